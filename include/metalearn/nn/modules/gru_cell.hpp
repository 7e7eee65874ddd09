#pragma once
/// @file
/// GRUCell: one step of a gated recurrent unit.
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

/// A GRU cell with PyTorch's parameter layout: `weight_ih` [3H, I], `weight_hh`
/// [3H, H], `bias_ih` [3H], `bias_hh` [3H] (gates r, z, n), all initialised from
/// U(+-1/sqrt(H)). See functional::gru_cell for the equations.
template <class T = float>
class METALEARN_API GRUCell : public Cloneable<GRUCell<T>, T> {
 public:
  using Module<T>::forward;

  GRUCell(Index input_size, Index hidden_size, Generator& gen, bool bias = true)
      : input_(input_size), hidden_(hidden_size), bias_(bias) {
    METALEARN_CHECK(input_size > 0 && hidden_size > 0, ValueError, "GRUCell: sizes ", input_size,
                    " and ", hidden_size, " must be positive");
    const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
    auto make = [&](Shape s) {
      auto t = zeros<T>(s);
      init::uniform(t, gen, -bound, bound);
      return t;
    };
    this->register_parameter("weight_ih", make(Shape{3 * hidden_size, input_size}));
    this->register_parameter("weight_hh", make(Shape{3 * hidden_size, hidden_size}));
    if (bias) {
      this->register_parameter("bias_ih", make(Shape{3 * hidden_size}));
      this->register_parameter("bias_hh", make(Shape{3 * hidden_size}));
    }
  }

  /// One step from hidden state h [N, H] with input x [N, I]; returns h' [N, H].
  Tensor<T> step(const Tensor<T>& x, const Tensor<T>& h, const ParamDict<T>& params) const {
    return functional::gru_cell(x, h, this->param(params, 0), this->param(params, 1),
                                bias_ ? this->param(params, 2) : Tensor<T>(),
                                bias_ ? this->param(params, 3) : Tensor<T>());
  }
  Tensor<T> step(const Tensor<T>& x, const Tensor<T>& h) const {
    return step(x, h, this->named_parameters());
  }

  /// One step from the zero hidden state.
  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>& params) const override {
    METALEARN_CHECK(x.dim() == 2, ShapeError, "GRUCell::forward: expected input [N, ", input_,
                    "], got ", x.shape());
    return step(x, zeros<T>(Shape{x.shape()[0], hidden_}), params);
  }

  [[nodiscard]] std::string type_name() const override { return "GRUCell"; }
  [[nodiscard]] std::string extra_repr() const override {
    return "input=" + std::to_string(input_) + ", hidden=" + std::to_string(hidden_) +
           ", bias=" + (bias_ ? "true" : "false");
  }
  [[nodiscard]] Index input_size() const noexcept { return input_; }
  [[nodiscard]] Index hidden_size() const noexcept { return hidden_; }

 private:
  Index input_, hidden_;
  bool bias_;
};

extern template class GRUCell<float>;
extern template class GRUCell<double>;

}  // namespace metalearn::nn
