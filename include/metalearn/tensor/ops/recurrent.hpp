#pragma once
/// @file
/// The gate arithmetic of a GRU step as one differentiable op, gru_gates: one pass over
/// the gates forward and one backward (compiled kernels, tensor/detail/simd_kernels.hpp),
/// instead of the slices, copies and elementwise passes of the same formulas written
/// with separate ops. nn::functional::gru_cell is the two products and this op.

#include <vector>

#include "metalearn/autograd/grad_mode.hpp"
#include "metalearn/autograd/node.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/tensor/detail/simd_kernels.hpp"
#include "metalearn/tensor/ops/elementwise.hpp"
#include "metalearn/tensor/ops/shape_ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn {

namespace detail {
/// gru_gates' backward in differentiable ops, for a backward that is itself recorded
/// (second order): the gates recomputed from gi, gh and h, then the formulas of
/// detail::gru_gates_backward in the same order, so that the values equal the
/// kernel's bit for bit. Returns {dgi, dgh, dh}.
template <class T>
std::vector<Tensor<T>> gru_gates_backward_ops(const Tensor<T>& gi, const Tensor<T>& gh,
                                              const Tensor<T>& h, const Tensor<T>& a) {
  const Index hs = h.shape()[1];
  const Tensor<T> ghn = slice(gh, 1, 2 * hs, 3 * hs);
  const Tensor<T> r = sigmoid(add(slice(gi, 1, 0, hs), slice(gh, 1, 0, hs)));
  const Tensor<T> z = sigmoid(add(slice(gi, 1, hs, 2 * hs), slice(gh, 1, hs, 2 * hs)));
  const Tensor<T> n = metalearn::tanh(add(slice(gi, 1, 2 * hs, 3 * hs), mul(r, ghn)));
  const Tensor<T> dpz = mul(mul(a, sub(h, n)), sub(z, mul(z, z)));
  const Tensor<T> dpn = mul(sub(a, mul(a, z)), add_scalar(neg(mul(n, n)), T(1)));
  const Tensor<T> dpr = mul(mul(dpn, ghn), sub(r, mul(r, r)));
  return {concat<T>({dpr, dpz, dpn}, 1), concat<T>({dpr, dpz, mul(dpn, r)}, 1), mul(a, z)};
}
}  // namespace detail

/// One GRU step's gates from the products gi = W_ih x + b_ih and gh = W_hh h + b_hh
/// ([N, 3H] each, gates r, z, n in PyTorch's order) and the hidden state h [N, H]:
///   r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r gh_n),
///   h' = n + z (h - n)  (= (1 - z) n + z h).
/// Returns h' [N, H], with the values the same formulas give as separate ops. The
/// recorded backward is one kernel pass over the saved gates; when that backward is
/// itself recorded (create_graph), it is written in differentiable ops instead, with the
/// same values. Throws ShapeError when the shapes do not fit together.
template <class T>
Tensor<T> gru_gates(const Tensor<T>& gi, const Tensor<T>& gh, const Tensor<T>& h) {
  METALEARN_CHECK(h.dim() == 2 && gi.dim() == 2 && gh.dim() == 2 && gi.shape()[0] == h.shape()[0] &&
                      gh.shape()[0] == h.shape()[0] && gi.shape()[1] == 3 * h.shape()[1] &&
                      gh.shape()[1] == 3 * h.shape()[1],
                  ShapeError, "gru_gates: products ", gi.shape(), " and ", gh.shape(),
                  " do not fit hidden state ", h.shape(), " (expected [N, 3H], [N, 3H], [N, H])");
  const Index rows = h.shape()[0];
  const Index hs = h.shape()[1];
  Tensor<T> out = Tensor<T>::empty(h.shape());
  const bool recorded = detail::should_record<T>({&gi, &gh, &h});
  Tensor<T> saved = recorded ? Tensor<T>::empty(Shape{rows, 4 * hs}) : Tensor<T>();
  detail::gru_gates_forward(gi.data(), gh.data(), h.data(), rows, hs, out.data(),
                            recorded ? saved.data() : nullptr);
  detail::record(
      out, "gru_gates", {&gi, &gh, &h}, [gi, gh, h, saved](Node<T>& self, const Tensor<T>& a) {
        if (autograd::is_grad_enabled()) {
          return detail::gru_gates_backward_ops(gi, gh, h, a);
        }
        const Index n = h.shape()[0];
        const Index k = h.shape()[1];
        Tensor<T> dgi = self.needs_input_grad(0) ? Tensor<T>::empty(gi.shape()) : Tensor<T>();
        Tensor<T> dgh = self.needs_input_grad(1) ? Tensor<T>::empty(gh.shape()) : Tensor<T>();
        Tensor<T> dh = self.needs_input_grad(2) ? Tensor<T>::empty(h.shape()) : Tensor<T>();
        detail::gru_gates_backward(
            a.data(), h.data(), saved.data(), n, k, dgi.defined() ? dgi.data() : nullptr,
            dgh.defined() ? dgh.data() : nullptr, dh.defined() ? dh.data() : nullptr);
        return std::vector<Tensor<T>>{dgi, dgh, dh};
      });
  return out;
}

}  // namespace metalearn
