#pragma once
/// @file
/// LSTMCell: one step of a long short-term memory unit.
// SPDX-License-Identifier: MIT

#include <string>

#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/nn/functional.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/nn/modules/recurrent_cell.hpp"
#include "metalearn/tensor/factory.hpp"

namespace metalearn::nn {

/// An LSTM cell with PyTorch's parameter layout: `weight_ih` [4H, I], `weight_hh`
/// [4H, H], `bias_ih` [4H], `bias_hh` [4H] (gates i, f, g, o), all initialised from
/// U(+-1/sqrt(H)). See functional::lstm_cell for the equations. step() works on any
/// ParamDict of fast weights, so the cell adapts in an inner loop like any module.
template <class T = float>
class METALEARN_API LSTMCell : public RecurrentCell<LSTMCell<T>, T, 4> {
 public:
  using Module<T>::forward;
  using State = functional::LstmState<T>;

  LSTMCell(Index input_size, Index hidden_size, Generator& gen, bool bias = true)
      : RecurrentCell<LSTMCell<T>, T, 4>(input_size, hidden_size, bias, "LSTMCell") {
    this->register_weights(gen);
  }

  /// One step from `state` with input x [N, I]; returns the next (h, c).
  [[nodiscard]] State step(const Tensor<T>& x, const State& state,
                           const ParamDict<T>& params) const {
    return functional::lstm_cell(x, state, this->weight_ih(params), this->weight_hh(params),
                                 this->bias_ih(params), this->bias_hh(params));
  }
  [[nodiscard]] State step(const Tensor<T>& x, const State& state) const {
    return step(x, state, this->named_parameters());
  }

  /// The zero state of a batch of `n`.
  [[nodiscard]] State zero_state(Index n) const {
    return {zeros<T>(Shape{n, this->hidden_}), zeros<T>(Shape{n, this->hidden_})};
  }

  /// One step from the zero state; returns h' [N, H].
  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>& params) const override {
    METALEARN_CHECK(x.dim() == 2, ShapeError, "LSTMCell::forward: expected input [N, ",
                    this->input_, "], got ", x.shape());
    return step(x, zero_state(x.shape()[0]), params).h;
  }

  [[nodiscard]] std::string type_name() const override { return "LSTMCell"; }
};

extern template class LSTMCell<float>;
extern template class LSTMCell<double>;

}  // namespace metalearn::nn
