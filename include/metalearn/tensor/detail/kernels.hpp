#pragma once
// Loops shared by the ops: elementwise maps with broadcasting, broadcast walks.

#include <algorithm>
#include <cstddef>
#include <vector>

#include "metalearn/core/shape.hpp"
#include "metalearn/core/thread_pool.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::detail {

/// body(begin, end) over [0, n): in one call, or, when the calling thread has an
/// intra-op pool and n is large, in blocks of 16 Ki elements spread over the pool.
/// For elementwise loops, whose every element is computed alone, the results are the
/// same bits either way.
template <class Body>
void for_elementwise_blocks(Index n, Body&& body) {
  constexpr Index kBlock = Index{1} << 14;
  if (n < 2 * kBlock || intra_op_pool() == nullptr) {
    body(Index{0}, n);
    return;
  }
  const auto blocks = static_cast<std::size_t>((n + kBlock - 1) / kBlock);
  parallel_for(blocks, [&](std::size_t b) {
    const Index lo = static_cast<Index>(b) * kBlock;
    body(lo, std::min(n, lo + kBlock));
  });
}

/// Sum of n contiguous values, accumulated in A, with eight independent partial
/// sums: the loop vectorises and is not bound by the latency of one chain of
/// additions. The order of additions is fixed, so results are deterministic.
template <class A, class T>
A sum_contiguous(const T* p, Index n) {
  A acc[8] = {};
  Index i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += static_cast<A>(p[i + k]);
  }
  A tail = A(0);
  for (; i < n; ++i) tail += static_cast<A>(p[i]);
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

/// Strides of `in` aligned to the (right-aligned) dims of `out`, 0 where `in` is broadcast.
inline std::vector<Index> broadcast_strides(const Shape& in, const Shape& out) {
  const Index n = out.dim();
  std::vector<Index> s(static_cast<std::size_t>(n), 0);
  const auto in_strides = in.strides();
  for (Index i = 0; i < in.dim(); ++i) {
    const Index od = i + (n - in.dim());
    s[static_cast<std::size_t>(od)] = in[i] == 1 ? 0 : in_strides[static_cast<std::size_t>(i)];
  }
  return s;
}

/// A broadcast loop nest with adjacent dimensions merged wherever both operands
/// are laid out contiguously across them (or broadcast across both), and extent-1
/// dimensions dropped. [N, C, H, W] against [1, C, 1, 1] becomes [N, C, H*W] with
/// the innermost run contiguous in the first operand and constant in the second.
struct BroadcastPlan {
  std::vector<Index> extent;  // collapsed extents, outermost first (at least one)
  std::vector<Index> sa, sb;  // strides of the two operands, 0 where broadcast
};

inline BroadcastPlan plan_broadcast(const Shape& out, const Shape& a, const Shape& b) {
  const auto fa = broadcast_strides(a, out);
  const auto fb = broadcast_strides(b, out);
  BroadcastPlan p;
  for (Index d = 0; d < out.dim(); ++d) {
    const auto du = static_cast<std::size_t>(d);
    if (out[d] == 1) continue;
    if (!p.extent.empty()) {
      const Index e = out[d];
      // Merge into the previous (outer) dimension when it steps over this one exactly.
      if (p.sa.back() == fa[du] * e && p.sb.back() == fb[du] * e) {
        p.extent.back() *= e;
        p.sa.back() = fa[du];
        p.sb.back() = fb[du];
        continue;
      }
    }
    p.extent.push_back(out[d]);
    p.sa.push_back(fa[du]);
    p.sb.push_back(fb[du]);
  }
  if (p.extent.empty()) {
    p.extent.push_back(1);
    p.sa.push_back(0);
    p.sb.push_back(0);
  }
  return p;
}

/// Runs `inner(out_offset, a_offset, b_offset, n, a_stride, b_stride)` over every
/// innermost run of the plan; `out` is contiguous.
template <class Inner>
void for_each_run(const BroadcastPlan& p, Inner&& inner) {
  const auto n = static_cast<Index>(p.extent.size());
  const Index run = p.extent.back();
  const Index ia = p.sa.back();
  const Index ib = p.sb.back();
  Index total = 1;
  for (Index e : p.extent) total *= e;
  if (total == 0) return;
  std::vector<Index> idx(static_cast<std::size_t>(n), 0);
  Index oa = 0;
  Index ob = 0;
  for (Index o = 0; o < total; o += run) {
    inner(o, oa, ob, run, ia, ib);
    for (Index d = n - 2; d >= 0; --d) {
      const auto du = static_cast<std::size_t>(d);
      ++idx[du];
      oa += p.sa[du];
      ob += p.sb[du];
      if (idx[du] < p.extent[du]) break;
      oa -= p.sa[du] * p.extent[du];
      ob -= p.sb[du] * p.extent[du];
      idx[du] = 0;
    }
  }
}

/// Calls fn(out_index, in_offset) for every element of `out`, where in_offset is the
/// flat offset of the element of `in` (broadcastable to `out`) that it reads.
template <class Fn>
void for_each_broadcast(const Shape& out, const Shape& in, Fn&& fn) {
  if (out.numel() == 0) return;
  for_each_run(plan_broadcast(out, in, in),
               [&](Index o, Index off, Index, Index run, Index is, Index) {
                 for (Index j = 0; j < run; ++j) fn(o + j, off + j * is);
               });
}

/// out[i] = f(a[i]).
template <class T, class F>
Tensor<T> map_unary(const Tensor<T>& a, F f) {
  Tensor<T> out = Tensor<T>::empty(a.shape());
  const T* pa = a.data();
  T* po = out.data();
  for_elementwise_blocks(a.numel(), [&](Index lo, Index hi) {
    for (Index i = lo; i < hi; ++i) po[i] = f(pa[i]);
  });
  return out;
}

/// out = f(a, b) elementwise with numpy broadcasting.
template <class T, class F>
Tensor<T> map_binary(const Tensor<T>& a, const Tensor<T>& b, const char* op, F f) {
  const T* pa = a.data();
  const T* pb = b.data();
  if (a.shape() == b.shape()) {
    Tensor<T> out = Tensor<T>::empty(a.shape());
    T* po = out.data();
    for_elementwise_blocks(a.numel(), [&](Index lo, Index hi) {
      for (Index i = lo; i < hi; ++i) po[i] = f(pa[i], pb[i]);
    });
    return out;
  }
  const Shape s = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor<T> out = Tensor<T>::empty(s);
  T* po = out.data();
  const Index total = s.numel();
  if (total == 0) return out;
  if (b.numel() == 1) {
    const T vb = pb[0];
    for_elementwise_blocks(total, [&](Index lo, Index hi) {
      for (Index i = lo; i < hi; ++i) po[i] = f(pa[i], vb);
    });
    return out;
  }
  if (a.numel() == 1) {
    const T va = pa[0];
    for_elementwise_blocks(total, [&](Index lo, Index hi) {
      for (Index i = lo; i < hi; ++i) po[i] = f(va, pb[i]);
    });
    return out;
  }
  for_each_run(plan_broadcast(s, a.shape(), b.shape()),
               [&](Index o, Index oa, Index ob, Index run, Index ia, Index ib) {
                 T* dst = po + o;
                 const T* xa = pa + oa;
                 const T* xb = pb + ob;
                 if (ia == 1 && ib == 1) {
                   for (Index j = 0; j < run; ++j) dst[j] = f(xa[j], xb[j]);
                 } else if (ia == 1 && ib == 0) {
                   const T vb = xb[0];
                   for (Index j = 0; j < run; ++j) dst[j] = f(xa[j], vb);
                 } else if (ia == 0 && ib == 1) {
                   const T va = xa[0];
                   for (Index j = 0; j < run; ++j) dst[j] = f(va, xb[j]);
                 } else {
                   for (Index j = 0; j < run; ++j) dst[j] = f(xa[j * ia], xb[j * ib]);
                 }
               });
  return out;
}

/// Splits `shape` around `dim` into (outer, size, inner) for reductions along dim.
struct DimSplit {
  Index outer = 1;
  Index size = 1;
  Index inner = 1;
};

inline DimSplit split_at(const Shape& shape, Index dim) {
  DimSplit s;
  for (Index i = 0; i < dim; ++i) s.outer *= shape[i];
  s.size = shape[dim];
  for (Index i = dim + 1; i < shape.dim(); ++i) s.inner *= shape[i];
  return s;
}

/// `shape` with dimension `dim` set to 1 (keepdim) or removed.
inline Shape reduced_shape(const Shape& shape, Index dim, bool keepdim) {
  std::vector<Index> d = shape.to_vector();
  if (keepdim) {
    d[static_cast<std::size_t>(dim)] = 1;
  } else {
    d.erase(d.begin() + dim);
  }
  return Shape(std::move(d));
}

}  // namespace metalearn::detail
