#pragma once
/// @file
/// Linear: y = x W^T + b.
// SPDX-License-Identifier: MIT

#include <cmath>
#include <string>

#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/nn/functional.hpp"
#include "metalearn/nn/init.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/tensor/factory.hpp"

namespace metalearn::nn {

/// A fully connected layer with parameters `weight` [out, in] and `bias` [out].
///
/// Initialised like torch.nn.Linear: weight from kaiming_uniform(a = sqrt(5)),
/// i.e. U(+-1/sqrt(in)), and bias from U(+-1/sqrt(in)).
template <class T = float>
class METALEARN_API Linear : public Cloneable<Linear<T>, T> {
 public:
  using Module<T>::forward;

  /// @param in_features  size of the last input dimension
  /// @param out_features size of the last output dimension
  /// @param gen          source of the initial values
  /// @param bias         whether to add a learnable bias
  Linear(Index in_features, Index out_features, Generator& gen, bool bias = true)
      : in_(in_features), out_(out_features), bias_(bias) {
    METALEARN_CHECK(in_features > 0 && out_features > 0, ValueError, "Linear: sizes ", in_features,
                    " and ", out_features, " must be positive");
    auto w = zeros<T>(Shape{out_features, in_features});
    init::kaiming_uniform(w, gen, std::sqrt(5.0));
    this->register_parameter("weight", w);
    if (bias) {
      auto b = zeros<T>(Shape{out_features});
      const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
      init::uniform(b, gen, -bound, bound);
      this->register_parameter("bias", b);
    }
  }

  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>& params) const override {
    return functional::linear(x, this->param(params, 0),
                              bias_ ? this->param(params, 1) : Tensor<T>());
  }

  [[nodiscard]] std::string type_name() const override { return "Linear"; }
  [[nodiscard]] std::string extra_repr() const override {
    return "in=" + std::to_string(in_) + ", out=" + std::to_string(out_) +
           ", bias=" + (bias_ ? "true" : "false");
  }

  [[nodiscard]] Index in_features() const noexcept { return in_; }
  [[nodiscard]] Index out_features() const noexcept { return out_; }
  [[nodiscard]] const Tensor<T>& weight() const { return this->own_parameter(0); }
  /// The bias (undefined when constructed without one).
  [[nodiscard]] Tensor<T> bias() const { return bias_ ? this->own_parameter(1) : Tensor<T>(); }

 private:
  Index in_;
  Index out_;
  bool bias_;
};

extern template class Linear<float>;
extern template class Linear<double>;

}  // namespace metalearn::nn
