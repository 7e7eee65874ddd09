#pragma once
/// @file
/// RecurrentCell: what the gated recurrent cells (GRUCell, LSTMCell) share.
// SPDX-License-Identifier: MIT

#include <cmath>
#include <string>

#include "metalearn/core/random.hpp"
#include "metalearn/nn/init.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/tensor/factory.hpp"

namespace metalearn::nn {

/// The parameters of a cell with `Gates` gates in PyTorch's layout: `weight_ih`
/// [Gates * H, I], `weight_hh` [Gates * H, H], `bias_ih` and `bias_hh` [Gates * H]
/// (optional), all initialised from U(+-1/sqrt(H)); and the cell's sizes.
template <class Derived, class T, Index Gates>
class RecurrentCell : public Cloneable<Derived, T> {
 public:
  [[nodiscard]] std::string extra_repr() const override {
    return "input=" + std::to_string(input_) + ", hidden=" + std::to_string(hidden_) +
           ", bias=" + (bias_ ? "true" : "false");
  }
  [[nodiscard]] Index input_size() const noexcept { return input_; }
  [[nodiscard]] Index hidden_size() const noexcept { return hidden_; }

 protected:
  /// Checks the sizes; `name` (the cell's type) is named in errors. The derived
  /// cell's constructor then calls register_weights() (registering needs the
  /// complete object, whose type_name() names it in errors).
  RecurrentCell(Index input_size, Index hidden_size, bool bias, const char* name)
      : input_(input_size), hidden_(hidden_size), bias_(bias) {
    METALEARN_CHECK(input_size > 0 && hidden_size > 0, ValueError, name, ": sizes ", input_size,
                    " and ", hidden_size, " must be positive");
  }

  /// Registers weight_ih, weight_hh and (with bias) bias_ih, bias_hh, drawn from `gen`.
  void register_weights(Generator& gen) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_));
    auto make = [&](Shape s) {
      auto t = zeros<T>(s);
      init::uniform(t, gen, -bound, bound);
      return t;
    };
    this->register_parameter("weight_ih", make(Shape{Gates * hidden_, input_}));
    this->register_parameter("weight_hh", make(Shape{Gates * hidden_, hidden_}));
    if (bias_) {
      this->register_parameter("bias_ih", make(Shape{Gates * hidden_}));
      this->register_parameter("bias_hh", make(Shape{Gates * hidden_}));
    }
  }

  /// weight_ih, weight_hh, bias_ih and bias_hh of `params` (undefined biases without bias).
  [[nodiscard]] const Tensor<T>& weight_ih(const ParamDict<T>& params) const {
    return this->param(params, 0);
  }
  [[nodiscard]] const Tensor<T>& weight_hh(const ParamDict<T>& params) const {
    return this->param(params, 1);
  }
  [[nodiscard]] Tensor<T> bias_ih(const ParamDict<T>& params) const {
    return bias_ ? this->param(params, 2) : Tensor<T>();
  }
  [[nodiscard]] Tensor<T> bias_hh(const ParamDict<T>& params) const {
    return bias_ ? this->param(params, 3) : Tensor<T>();
  }

  Index input_, hidden_;
  bool bias_;
};

}  // namespace metalearn::nn
