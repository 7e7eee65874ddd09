#pragma once
/// @file
/// Stateless functional twins of the layers: each takes its parameters as tensors.
/// Every function is built from differentiable tensor ops, so it supports second
/// order (create_graph) like the ops themselves.
// SPDX-License-Identifier: MIT

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "metalearn/autograd/grad_mode.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/core/thread_pool.hpp"
#include "metalearn/tensor/ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::nn::functional {

/// y = x W^T + b for x [..., in], weight [out, in], bias [out] (undefined: none).
template <class T>
Tensor<T> linear(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = Tensor<T>()) {
  METALEARN_CHECK(weight.dim() == 2 && x.dim() >= 1 && x.shape()[x.dim() - 1] == weight.shape()[1],
                  ShapeError, "linear: input ", x.shape(), " does not fit weight ", weight.shape(),
                  " (expected [..., ", weight.dim() == 2 ? weight.shape()[1] : -1, "])");
  Tensor<T> y;
  if (x.dim() == 2) {
    y = mm(x, weight, false, true);
  } else {
    std::vector<Index> lead = x.shape().to_vector();
    lead.pop_back();
    y = mm(reshape(x, std::vector<Index>{-1, x.shape()[x.dim() - 1]}), weight, false, true);
    lead.push_back(weight.shape()[0]);
    y = reshape(y, std::move(lead));
  }
  if (bias.defined()) {
    METALEARN_CHECK(bias.dim() == 1 && bias.shape()[0] == weight.shape()[0], ShapeError,
                    "linear: bias ", bias.shape(), " does not match weight ", weight.shape());
    y = add(y, bias);
  }
  return y;
}

/// 2-D convolution of x [N, C, H, W] with weight [O, C, kh, kw] and bias [O].
template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = Tensor<T>(),
                 Index stride = 1, Index padding = 0) {
  return metalearn::conv2d(x, weight, bias, stride, padding);
}

/// Max pooling of x [N, C, H, W] with a square window (stride 0: the window).
template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, Index kernel, Index stride = 0) {
  return metalearn::max_pool2d(x, kernel, stride);
}

template <class T>
Tensor<T> relu(const Tensor<T>& x) {
  return metalearn::relu(x);
}
template <class T>
Tensor<T> tanh(const Tensor<T>& x) {
  return metalearn::tanh(x);
}
template <class T>
Tensor<T> sigmoid(const Tensor<T>& x) {
  return metalearn::sigmoid(x);
}
template <class T>
Tensor<T> leaky_relu(const Tensor<T>& x, T negative_slope = T(0.01)) {
  return metalearn::leaky_relu(x, negative_slope);
}

/// Collapses dimensions [start, end] (default: all but the batch dimension).
template <class T>
Tensor<T> flatten(const Tensor<T>& x, Index start = 1, Index end = -1) {
  return metalearn::flatten(x, start, end);
}

/// Batch normalisation (the op, in tensor/ops/batch_norm.hpp), as a functional twin.
using metalearn::batch_norm;

/// One GRU step (PyTorch's gate layout): x [N, I], h [N, H], weight_ih [3H, I],
/// weight_hh [3H, H], biases [3H] (optional). Gates r, z, n in that order:
/// r = s(W_ir x + b_ir + W_hr h + b_hr), z likewise, n = tanh(W_in x + b_in +
/// r (W_hn h + b_hn)), h' = (1 - z) n + z h.
template <class T>
Tensor<T> gru_cell(const Tensor<T>& x, const Tensor<T>& h, const Tensor<T>& weight_ih,
                   const Tensor<T>& weight_hh, const Tensor<T>& bias_ih = Tensor<T>(),
                   const Tensor<T>& bias_hh = Tensor<T>()) {
  METALEARN_CHECK(
      h.dim() == 2 && weight_hh.dim() == 2 && weight_hh.shape()[0] == 3 * h.shape()[1] &&
          weight_hh.shape()[1] == h.shape()[1] && x.dim() == 2 && x.shape()[0] == h.shape()[0],
      ShapeError, "gru_cell: hidden state ", h.shape(), ", input ", x.shape(), " and weight_hh ",
      weight_hh.shape(), " do not fit together");
  return gru_gates(linear(x, weight_ih, bias_ih), linear(h, weight_hh, bias_hh), h);
}

/// The state of an LSTM: hidden h [N, H] and cell c [N, H].
template <class T>
struct LstmState {
  Tensor<T> h;
  Tensor<T> c;
};

/// One LSTM step (PyTorch's gate layout): x [N, I], state h, c [N, H], weight_ih
/// [4H, I], weight_hh [4H, H], biases [4H] (optional). Gates i, f, g, o in that order:
/// [i f g o] = W_ih x + b_ih + W_hh h + b_hh, c' = s(f) c + s(i) tanh(g),
/// h' = s(o) tanh(c'), with s the logistic sigmoid.
template <class T>
LstmState<T> lstm_cell(const Tensor<T>& x, const LstmState<T>& state, const Tensor<T>& weight_ih,
                       const Tensor<T>& weight_hh, const Tensor<T>& bias_ih = Tensor<T>(),
                       const Tensor<T>& bias_hh = Tensor<T>()) {
  const Tensor<T>& h = state.h;
  const Tensor<T>& c = state.c;
  METALEARN_CHECK(h.dim() == 2 && c.defined() && c.shape() == h.shape() && weight_hh.dim() == 2 &&
                      weight_hh.shape()[0] == 4 * h.shape()[1] &&
                      weight_hh.shape()[1] == h.shape()[1] && x.dim() == 2 &&
                      x.shape()[0] == h.shape()[0],
                  ShapeError, "lstm_cell: hidden state ", h.shape(), ", cell state ",
                  c.defined() ? c.shape() : Shape{}, ", input ", x.shape(), " and weight_hh ",
                  weight_hh.shape(), " do not fit together");
  const Index hs = h.shape()[1];
  const Tensor<T> gates = add(linear(x, weight_ih, bias_ih), linear(h, weight_hh, bias_hh));
  const Tensor<T> i = metalearn::sigmoid(slice(gates, 1, 0, hs));
  const Tensor<T> f = metalearn::sigmoid(slice(gates, 1, hs, 2 * hs));
  const Tensor<T> g = metalearn::tanh(slice(gates, 1, 2 * hs, 3 * hs));
  const Tensor<T> o = metalearn::sigmoid(slice(gates, 1, 3 * hs, 4 * hs));
  Tensor<T> c_next = add(mul(f, c), mul(i, g));
  Tensor<T> h_next = mul(o, metalearn::tanh(c_next));
  return {std::move(h_next), std::move(c_next)};
}

}  // namespace metalearn::nn::functional
