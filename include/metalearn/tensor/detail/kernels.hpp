#pragma once
// Loops shared by the ops: elementwise maps with broadcasting, broadcast walks.

#include <vector>

#include "metalearn/core/shape.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::detail {

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

/// Calls fn(out_index, in_offset) for every element of `out`, where in_offset is the
/// flat offset of the element of `in` (broadcastable to `out`) that it reads.
template <class Fn>
void for_each_broadcast(const Shape& out, const Shape& in, Fn&& fn) {
  const Index total = out.numel();
  if (total == 0) return;
  const Index n = out.dim();
  if (n == 0) {
    fn(Index{0}, Index{0});
    return;
  }
  const auto s = broadcast_strides(in, out);
  const Index inner = out[n - 1];
  const Index is = s[static_cast<std::size_t>(n - 1)];
  std::vector<Index> idx(static_cast<std::size_t>(n), 0);
  Index off = 0;
  for (Index o = 0; o < total; o += inner) {
    for (Index j = 0; j < inner; ++j) fn(o + j, off + j * is);
    for (Index d = n - 2; d >= 0; --d) {
      auto du = static_cast<std::size_t>(d);
      ++idx[du];
      off += s[du];
      if (idx[du] < out[d]) break;
      off -= s[du] * out[d];
      idx[du] = 0;
    }
  }
}

/// out[i] = f(a[i]).
template <class T, class F>
Tensor<T> map_unary(const Tensor<T>& a, F f) {
  Tensor<T> out = Tensor<T>::empty(a.shape());
  const T* pa = a.data();
  T* po = out.data();
  const Index n = a.numel();
  for (Index i = 0; i < n; ++i) po[i] = f(pa[i]);
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
    const Index n = a.numel();
    for (Index i = 0; i < n; ++i) po[i] = f(pa[i], pb[i]);
    return out;
  }
  const Shape s = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor<T> out = Tensor<T>::empty(s);
  T* po = out.data();
  const Index total = s.numel();
  if (total == 0) return out;
  if (b.numel() == 1) {
    const T vb = pb[0];
    for (Index i = 0; i < total; ++i) po[i] = f(pa[i], vb);
    return out;
  }
  if (a.numel() == 1) {
    const T va = pa[0];
    for (Index i = 0; i < total; ++i) po[i] = f(va, pb[i]);
    return out;
  }
  const Index n = s.dim();
  const auto sa = broadcast_strides(a.shape(), s);
  const auto sb = broadcast_strides(b.shape(), s);
  const Index inner = s[n - 1];
  const Index ia = sa[static_cast<std::size_t>(n - 1)];
  const Index ib = sb[static_cast<std::size_t>(n - 1)];
  std::vector<Index> idx(static_cast<std::size_t>(n), 0);
  Index oa = 0;
  Index ob = 0;
  for (Index o = 0; o < total; o += inner) {
    T* dst = po + o;
    const T* xa = pa + oa;
    const T* xb = pb + ob;
    if (ia == 1 && ib == 1) {
      for (Index j = 0; j < inner; ++j) dst[j] = f(xa[j], xb[j]);
    } else if (ia == 1 && ib == 0) {
      const T vb = xb[0];
      for (Index j = 0; j < inner; ++j) dst[j] = f(xa[j], vb);
    } else if (ia == 0 && ib == 1) {
      const T va = xa[0];
      for (Index j = 0; j < inner; ++j) dst[j] = f(va, xb[j]);
    } else {
      for (Index j = 0; j < inner; ++j) dst[j] = f(xa[j * ia], xb[j * ib]);
    }
    for (Index d = n - 2; d >= 0; --d) {
      auto du = static_cast<std::size_t>(d);
      ++idx[du];
      oa += sa[du];
      ob += sb[du];
      if (idx[du] < s[d]) break;
      oa -= sa[du] * s[d];
      ob -= sb[du] * s[d];
      idx[du] = 0;
    }
  }
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
  std::vector<Index> d = shape.dims();
  if (keepdim) {
    d[static_cast<std::size_t>(dim)] = 1;
  } else {
    d.erase(d.begin() + dim);
  }
  return Shape(std::move(d));
}

}  // namespace metalearn::detail
