#pragma once
/// @file
/// GRUCell: one step of a gated recurrent unit.
// SPDX-License-Identifier: MIT

#include <string>

#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/nn/functional.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/nn/modules/recurrent_cell.hpp"
#include "metalearn/tensor/factory.hpp"

namespace metalearn::nn {

/// A GRU cell with PyTorch's parameter layout: `weight_ih` [3H, I], `weight_hh`
/// [3H, H], `bias_ih` [3H], `bias_hh` [3H] (gates r, z, n), all initialised from
/// U(+-1/sqrt(H)). See functional::gru_cell for the equations.
template <class T = float>
class METALEARN_API GRUCell : public RecurrentCell<GRUCell<T>, T, 3> {
 public:
  using Module<T>::forward;

  GRUCell(Index input_size, Index hidden_size, Generator& gen, bool bias = true)
      : RecurrentCell<GRUCell<T>, T, 3>(input_size, hidden_size, bias, "GRUCell") {
    this->register_weights(gen);
  }

  /// One step from hidden state h [N, H] with input x [N, I]; returns h' [N, H].
  Tensor<T> step(const Tensor<T>& x, const Tensor<T>& h, const ParamDict<T>& params) const {
    return functional::gru_cell(x, h, this->weight_ih(params), this->weight_hh(params),
                                this->bias_ih(params), this->bias_hh(params));
  }
  Tensor<T> step(const Tensor<T>& x, const Tensor<T>& h) const {
    return step(x, h, this->named_parameters());
  }

  /// One step from the zero hidden state.
  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>& params) const override {
    METALEARN_CHECK(x.dim() == 2, ShapeError, "GRUCell::forward: expected input [N, ", this->input_,
                    "], got ", x.shape());
    return step(x, zeros<T>(Shape{x.shape()[0], this->hidden_}), params);
  }

  [[nodiscard]] std::string type_name() const override { return "GRUCell"; }
};

extern template class GRUCell<float>;
extern template class GRUCell<double>;

}  // namespace metalearn::nn
