#pragma once
/// @file
/// Differentiable matrix products: matmul (2-D, and N-D by 2-D) and batched bmm. The
/// products run in the library (detail::gemm_batched, tensor/gemm.hpp); transposes are
/// folded into the GEMM, never copied.

#include <vector>

#include "metalearn/autograd/node.hpp"
#include "metalearn/tensor/gemm.hpp"
#include "metalearn/tensor/ops/reduction.hpp"
#include "metalearn/tensor/ops/shape_ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn {

/// op(a) @ op(b) for 2-D a, b (op = transpose when the flag is set), or batched for
/// 3-D operands (a 2-D operand is shared across the batch).
template <class T>
Tensor<T> mm(const Tensor<T>& a, const Tensor<T>& b, bool ta, bool tb) {
  METALEARN_CHECK((a.dim() == 2 || a.dim() == 3) && (b.dim() == 2 || b.dim() == 3), ShapeError,
                  "matmul: expected 2-D or 3-D operands, got ", a.shape(), " and ", b.shape());
  const bool ba = a.dim() == 3;
  const bool bb = b.dim() == 3;
  const Index batch = ba ? a.shape()[0] : (bb ? b.shape()[0] : 1);
  METALEARN_CHECK(!(ba && bb) || a.shape()[0] == b.shape()[0], ShapeError,
                  "matmul: batch sizes differ in ", a.shape(), " and ", b.shape());
  const Index ar = a.shape()[a.dim() - 2];
  const Index ac = a.shape()[a.dim() - 1];
  const Index br = b.shape()[b.dim() - 2];
  const Index bc = b.shape()[b.dim() - 1];
  const Index m = ta ? ac : ar;
  const Index k = ta ? ar : ac;
  const Index k2 = tb ? bc : br;
  const Index n = tb ? br : bc;
  METALEARN_CHECK(k == k2, ShapeError, "matmul: inner dimensions differ: ", a.shape(),
                  ta ? "^T" : "", " @ ", b.shape(), tb ? "^T" : "", " (", k, " vs ", k2, ")");
  Tensor<T> out = (ba || bb) ? Tensor<T>::empty(Shape{batch, m, n}) : Tensor<T>::empty(Shape{m, n});
  detail::gemm_batched(a.data(), ar, ac, ba ? ar * ac : 0, ta, b.data(), br, bc, bb ? br * bc : 0,
                       tb, out.data(), batch);
  detail::record(out, "matmul", {&a, &b}, [a, b, ta, tb](Node<T>& self, const Tensor<T>& g) {
    Tensor<T> ga;
    Tensor<T> gb;
    if (self.needs_input_grad(0)) {
      ga = ta ? mm(b, g, tb, true) : mm(g, b, false, !tb);
      if (a.dim() == 2 && ga.dim() == 3) ga = sum(ga, 0);
    }
    if (self.needs_input_grad(1)) {
      gb = tb ? mm(g, a, true, ta) : mm(a, g, !ta, false);
      if (b.dim() == 2 && gb.dim() == 3) gb = sum(gb, 0);
    }
    return std::vector<Tensor<T>>{ga, gb};
  });
  return out;
}

/// Matrix product. 2-D @ 2-D; 3-D @ 3-D (batched); N-D @ 2-D applies the matrix to
/// the last dimension of a (leading dimensions are flattened and restored).
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
  if (a.dim() > 3 || (a.dim() == 3 && b.dim() == 2)) {
    METALEARN_CHECK(b.dim() == 2, ShapeError, "matmul: cannot multiply ", a.shape(), " by ",
                    b.shape());
    std::vector<Index> lead(a.shape().begin(), a.shape().end() - 1);
    Tensor<T> flat = reshape(a, std::vector<Index>{-1, a.shape()[a.dim() - 1]});
    Tensor<T> r = mm(flat, b, false, false);
    lead.push_back(b.shape()[1]);
    return reshape(r, std::move(lead));
  }
  return mm(a, b, false, false);
}

/// Batched matrix product of [B, M, K] and [B, K, N].
template <class T>
Tensor<T> bmm(const Tensor<T>& a, const Tensor<T>& b) {
  METALEARN_CHECK(a.dim() == 3 && b.dim() == 3, ShapeError, "bmm: expected 3-D operands, got ",
                  a.shape(), " and ", b.shape());
  return mm(a, b, false, false);
}

}  // namespace metalearn
