#pragma once
/// @file
/// LSTMCell: one step of a long short-term memory unit.
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

/// An LSTM cell with PyTorch's parameter layout: `weight_ih` [4H, I], `weight_hh`
/// [4H, H], `bias_ih` [4H], `bias_hh` [4H] (gates i, f, g, o), all initialised from
/// U(+-1/sqrt(H)). See functional::lstm_cell for the equations. step() works on any
/// ParamDict of fast weights, so the cell adapts in an inner loop like any module.
template <class T = float>
class METALEARN_API LSTMCell : public Cloneable<LSTMCell<T>, T> {
 public:
  using Module<T>::forward;
  using State = functional::LstmState<T>;

  LSTMCell(Index input_size, Index hidden_size, Generator& gen, bool bias = true)
      : input_(input_size), hidden_(hidden_size), bias_(bias) {
    METALEARN_CHECK(input_size > 0 && hidden_size > 0, ValueError, "LSTMCell: sizes ", input_size,
                    " and ", hidden_size, " must be positive");
    const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
    auto make = [&](Shape s) {
      auto t = zeros<T>(s);
      init::uniform(t, gen, -bound, bound);
      return t;
    };
    this->register_parameter("weight_ih", make(Shape{4 * hidden_size, input_size}));
    this->register_parameter("weight_hh", make(Shape{4 * hidden_size, hidden_size}));
    if (bias) {
      this->register_parameter("bias_ih", make(Shape{4 * hidden_size}));
      this->register_parameter("bias_hh", make(Shape{4 * hidden_size}));
    }
  }

  /// One step from `state` with input x [N, I]; returns the next (h, c).
  [[nodiscard]] State step(const Tensor<T>& x, const State& state,
                           const ParamDict<T>& params) const {
    return functional::lstm_cell(x, state, this->param(params, 0), this->param(params, 1),
                                 bias_ ? this->param(params, 2) : Tensor<T>(),
                                 bias_ ? this->param(params, 3) : Tensor<T>());
  }
  [[nodiscard]] State step(const Tensor<T>& x, const State& state) const {
    return step(x, state, this->named_parameters());
  }

  /// The zero state of a batch of `n`.
  [[nodiscard]] State zero_state(Index n) const {
    return {zeros<T>(Shape{n, hidden_}), zeros<T>(Shape{n, hidden_})};
  }

  /// One step from the zero state; returns h' [N, H].
  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>& params) const override {
    METALEARN_CHECK(x.dim() == 2, ShapeError, "LSTMCell::forward: expected input [N, ", input_,
                    "], got ", x.shape());
    return step(x, zero_state(x.shape()[0]), params).h;
  }

  [[nodiscard]] std::string type_name() const override { return "LSTMCell"; }
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

extern template class LSTMCell<float>;
extern template class LSTMCell<double>;

}  // namespace metalearn::nn
