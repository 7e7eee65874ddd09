#pragma once
/// @file
/// MLP: Linear layers with an activation between them.
// SPDX-License-Identifier: MIT

#include <memory>
#include <string>
#include <vector>

#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/nn/modules/activation.hpp"
#include "metalearn/nn/modules/linear.hpp"

namespace metalearn::nn {

/// A multilayer perceptron: Linear(sizes[0], sizes[1]), activation, ...,
/// Linear(sizes[n-2], sizes[n-1]), with no activation after the last layer.
///
/// Submodules are numbered like torch.nn.Sequential, activations included, so the
/// parameters of `MLP({1, 40, 40, 1}, gen)` are 0.weight, 0.bias, 2.weight,
/// 2.bias, 4.weight, 4.bias.
///
/// @code
/// metalearn::Generator gen(42);
/// metalearn::nn::MLP model({1, 40, 40, 1}, gen);   // MLP<float>
/// auto y = model.forward(x);
/// @endcode
template <class T = float>
class METALEARN_API MLP : public Cloneable<MLP<T>, T> {
 public:
  using Module<T>::forward;

  /// @param sizes      layer widths, input first (at least two)
  /// @param gen        source of the initial values
  /// @param activation nonlinearity between the layers
  MLP(const std::vector<Index>& sizes, Generator& gen, Activation activation = Activation::kReLU)
      : sizes_(sizes), activation_(activation) {
    METALEARN_CHECK(sizes.size() >= 2, ValueError, "MLP: need at least two sizes, got ",
                    sizes.size());
    for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
      add(std::make_shared<Linear<T>>(sizes[i], sizes[i + 1], gen));
      if (i + 2 < sizes.size() && activation != Activation::kNone) {
        add(make_activation<T>(activation));
      }
    }
  }

  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>& params) const override {
    return this->forward_chain(x, params);
  }

  [[nodiscard]] std::string type_name() const override { return "MLP"; }
  [[nodiscard]] const std::vector<Index>& sizes() const noexcept { return sizes_; }
  [[nodiscard]] Activation activation() const noexcept { return activation_; }

 private:
  void add(std::shared_ptr<Module<T>> m) {
    this->register_module(std::to_string(this->num_children()), std::move(m));
  }

  std::vector<Index> sizes_;
  Activation activation_;
};

extern template class MLP<float>;
extern template class MLP<double>;

}  // namespace metalearn::nn
