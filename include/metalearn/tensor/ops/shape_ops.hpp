#pragma once
/// @file
/// Differentiable shape ops: reshape, permute/transpose, expand/sum_to, slice,
/// concat/stack, and indexing (take/put, index_select, gather).

#include <algorithm>
#include <numeric>
#include <vector>

#include "metalearn/autograd/node.hpp"
#include "metalearn/core/checked.hpp"
#include "metalearn/tensor/detail/kernels.hpp"
#include "metalearn/tensor/factory.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn {

/// Same values in a new shape (one extent may be -1). Shares storage.
template <class T>
Tensor<T> reshape(const Tensor<T>& a, std::vector<Index> dims) {
  Index known = 1;
  Index infer = -1;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1) {
      METALEARN_CHECK(infer < 0, ShapeError, "reshape: more than one -1 in the target shape");
      infer = static_cast<Index>(i);
    } else {
      METALEARN_CHECK(dims[i] >= 0, ShapeError, "reshape: negative extent ", dims[i]);
      known = checked_mul(known, dims[i], "reshape");
    }
  }
  if (infer >= 0) {
    METALEARN_CHECK(known != 0 && a.numel() % known == 0, ShapeError, "reshape: cannot view ",
                    a.shape(), " (", a.numel(), " elements) with a -1 extent");
    dims[static_cast<std::size_t>(infer)] = a.numel() / known;
  }
  Shape target(std::move(dims));
  METALEARN_CHECK(target.numel() == a.numel(), ShapeError, "reshape: cannot reshape ", a.shape(),
                  " (", a.numel(), " elements) to ", target, " (", target.numel(), " elements)");
  if (target == a.shape()) return a;
  Tensor<T> out = Tensor<T>::from_storage(a.storage(), target);
  detail::record(out, "reshape", {&a}, [sa = a.shape()](Node<T>&, const Tensor<T>& g) {
    return std::vector<Tensor<T>>{reshape(g, sa.to_vector())};
  });
  return out;
}

template <class T>
Tensor<T> reshape(const Tensor<T>& a, const Shape& shape) {
  return reshape(a, shape.to_vector());
}

/// Collapses dimensions [start, end] into one.
template <class T>
Tensor<T> flatten(const Tensor<T>& a, Index start = 0, Index end = -1) {
  if (a.dim() == 0) return reshape(a, std::vector<Index>{1});
  start = a.shape().wrap_dim(start, "flatten");
  end = a.shape().wrap_dim(end, "flatten");
  std::vector<Index> d;
  Index merged = 1;
  for (Index i = 0; i < a.dim(); ++i) {
    if (i < start || i > end) {
      d.push_back(a.shape()[i]);
    } else {
      merged *= a.shape()[i];
      if (i == end) d.push_back(merged);
    }
  }
  return reshape(a, std::move(d));
}

/// Inserts an extent-1 dimension at `dim` (may equal a.dim()).
template <class T>
Tensor<T> unsqueeze(const Tensor<T>& a, Index dim) {
  const Index n = a.dim() + 1;
  const Index d = dim < 0 ? dim + n : dim;
  METALEARN_CHECK(d >= 0 && d < n, ShapeError, "unsqueeze: dimension ", dim,
                  " out of range for shape ", a.shape());
  std::vector<Index> dims = a.shape().to_vector();
  dims.insert(dims.begin() + d, 1);
  return reshape(a, std::move(dims));
}

/// Removes dimension `dim`, which must have extent 1.
template <class T>
Tensor<T> squeeze(const Tensor<T>& a, Index dim) {
  const Index d = a.shape().wrap_dim(dim, "squeeze");
  METALEARN_CHECK(a.shape()[d] == 1, ShapeError, "squeeze: dimension ", dim, " of shape ",
                  a.shape(), " is not 1");
  std::vector<Index> dims = a.shape().to_vector();
  dims.erase(dims.begin() + d);
  return reshape(a, std::move(dims));
}

/// Reorders dimensions: out.shape[i] = a.shape[perm[i]].
template <class T>
Tensor<T> permute(const Tensor<T>& a, const std::vector<Index>& perm) {
  const Index n = a.dim();
  METALEARN_CHECK(static_cast<Index>(perm.size()) == n, ShapeError, "permute: ", perm.size(),
                  " dimensions given for a tensor of shape ", a.shape());
  std::vector<Index> p(perm.size());
  std::vector<bool> seen(perm.size(), false);
  for (std::size_t i = 0; i < perm.size(); ++i) {
    p[i] = a.shape().wrap_dim(perm[i], "permute");
    METALEARN_CHECK(!seen[static_cast<std::size_t>(p[i])], ShapeError, "permute: dimension ",
                    perm[i], " repeated");
    seen[static_cast<std::size_t>(p[i])] = true;
  }
  bool identity = true;
  for (Index i = 0; i < n; ++i) identity = identity && p[static_cast<std::size_t>(i)] == i;
  if (identity) return a;
  std::vector<Index> od(static_cast<std::size_t>(n));
  const auto in_strides = a.shape().strides();
  std::vector<Index> st(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) {
    od[static_cast<std::size_t>(i)] = a.shape()[p[static_cast<std::size_t>(i)]];
    st[static_cast<std::size_t>(i)] =
        in_strides[static_cast<std::size_t>(p[static_cast<std::size_t>(i)])];
  }
  Shape os(od);
  Tensor<T> out = Tensor<T>::empty(os);
  const T* src = a.data();
  T* dst = out.data();
  const Index total = out.numel();
  if (total > 0) {
    std::vector<Index> idx(static_cast<std::size_t>(n), 0);
    const Index inner = os[n - 1];
    const Index is = st[static_cast<std::size_t>(n - 1)];
    Index off = 0;
    for (Index o = 0; o < total; o += inner) {
      for (Index j = 0; j < inner; ++j) dst[o + j] = src[off + j * is];
      for (Index d = n - 2; d >= 0; --d) {
        auto du = static_cast<std::size_t>(d);
        ++idx[du];
        off += st[du];
        if (idx[du] < os[d]) break;
        off -= st[du] * os[d];
        idx[du] = 0;
      }
    }
  }
  detail::record(out, "permute", {&a}, [p](Node<T>&, const Tensor<T>& g) {
    std::vector<Index> inv(p.size());
    for (std::size_t i = 0; i < p.size(); ++i)
      inv[static_cast<std::size_t>(p[i])] = static_cast<Index>(i);
    return std::vector<Tensor<T>>{permute(g, inv)};
  });
  return out;
}

/// Swaps two dimensions (default: the last two).
template <class T>
Tensor<T> transpose(const Tensor<T>& a, Index d0 = -2, Index d1 = -1) {
  METALEARN_CHECK(a.dim() >= 2 || (a.dim() == 1 && d0 == -2 && d1 == -1) || a.dim() == 0,
                  ShapeError, "transpose: shape ", a.shape(), " has fewer than 2 dimensions");
  if (a.dim() < 2) return a;
  const Index x = a.shape().wrap_dim(d0, "transpose");
  const Index y = a.shape().wrap_dim(d1, "transpose");
  std::vector<Index> perm(static_cast<std::size_t>(a.dim()));
  std::iota(perm.begin(), perm.end(), Index{0});
  std::swap(perm[static_cast<std::size_t>(x)], perm[static_cast<std::size_t>(y)]);
  return permute(a, perm);
}

template <class T>
Tensor<T> sum_to(const Tensor<T>& g, const Shape& shape);

/// Broadcasts `a` to `shape` (numpy rules), copying.
template <class T>
Tensor<T> expand(const Tensor<T>& a, const Shape& shape) {
  const Shape s = broadcast_shapes(a.shape(), shape, "expand");
  METALEARN_CHECK(s == shape, ShapeError, "expand: cannot expand shape ", a.shape(), " to ", shape);
  if (a.shape() == shape) return a;
  Tensor<T> out = Tensor<T>::empty(shape);
  const T* src = a.data();
  T* dst = out.data();
  if (a.numel() == 1) {
    std::fill_n(dst, out.numel(), src[0]);
  } else {
    detail::for_each_run(detail::plan_broadcast(shape, a.shape(), a.shape()),
                         [&](Index o, Index off, Index, Index run, Index is, Index) {
                           if (is == 0) {
                             std::fill_n(dst + o, run, src[off]);
                           } else {
                             for (Index j = 0; j < run; ++j) dst[o + j] = src[off + j * is];
                           }
                         });
  }
  detail::record(out, "expand", {&a}, [sa = a.shape()](Node<T>&, const Tensor<T>& g) {
    return std::vector<Tensor<T>>{sum_to(g, sa)};
  });
  return out;
}

/// Sums `g` over the dimensions along which `shape` was broadcast to g.shape();
/// the adjoint of expand.
template <class T>
Tensor<T> sum_to(const Tensor<T>& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const Shape s = broadcast_shapes(shape, g.shape(), "sum_to");
  METALEARN_CHECK(s == g.shape(), ShapeError, "sum_to: shape ", g.shape(),
                  " is not a broadcast of ", shape);
  Tensor<T> out = zeros<T>(shape);
  const T* src = g.data();
  T* dst = out.data();
  if (shape.numel() == 1) {
    dst[0] = detail::sum_contiguous<T>(src, g.numel());
  } else {
    detail::for_each_run(detail::plan_broadcast(g.shape(), shape, shape),
                         [&](Index o, Index off, Index, Index run, Index is, Index) {
                           if (is == 0) {
                             dst[off] += detail::sum_contiguous<T>(src + o, run);
                           } else {
                             for (Index j = 0; j < run; ++j) dst[off + j * is] += src[o + j];
                           }
                         });
  }
  detail::record(out, "sum_to", {&g}, [sg = g.shape()](Node<T>&, const Tensor<T>& gg) {
    return std::vector<Tensor<T>>{expand(gg, sg)};
  });
  return out;
}

namespace detail {
template <class T>
Tensor<T> slice_backward(const Tensor<T>& g, const Shape& full_shape, Index dim, Index start,
                         Index step);
}  // namespace detail

/// Elements [start, end) with `step` along `dim` (negative start/end count from the end).
template <class T>
Tensor<T> slice(const Tensor<T>& a, Index dim, Index start, Index end, Index step = 1) {
  const Index d = a.shape().wrap_dim(dim, "slice");
  const Index n = a.shape()[d];
  METALEARN_CHECK(step > 0, ValueError, "slice: step must be positive, got ", step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<Index>(start, 0, n);
  end = std::clamp<Index>(end, start, n);
  const Index len = (end - start + step - 1) / step;
  std::vector<Index> od = a.shape().to_vector();
  od[static_cast<std::size_t>(d)] = len;
  Tensor<T> out = Tensor<T>::empty(Shape(od));
  const auto sp = detail::split_at(a.shape(), d);
  const T* src = a.data();
  T* dst = out.data();
  for (Index o = 0; o < sp.outer; ++o) {
    for (Index k = 0; k < len; ++k) {
      std::copy_n(src + (o * sp.size + start + k * step) * sp.inner, sp.inner,
                  dst + (o * len + k) * sp.inner);
    }
  }
  detail::record(out, "slice", {&a},
                 [sa = a.shape(), d, start, step](Node<T>&, const Tensor<T>& g) {
                   return std::vector<Tensor<T>>{detail::slice_backward(g, sa, d, start, step)};
                 });
  return out;
}

/// Alias of slice(a, dim, start, start + length).
template <class T>
Tensor<T> narrow(const Tensor<T>& a, Index dim, Index start, Index length) {
  return slice(a, dim, start, start + length);
}

/// The slice at `index` along `dim`, with that dimension removed; a negative index
/// counts from the end. select(a, 0, i) of a [B, n] tensor is its row i, [n].
template <class T>
Tensor<T> select(const Tensor<T>& a, Index dim, Index index) {
  const Index d = a.shape().wrap_dim(dim, "select");
  const Index n = a.shape()[d];
  METALEARN_CHECK(index >= -n && index < n, ShapeError, "select: index ", index,
                  " is out of range for dimension ", dim, " of shape ", a.shape());
  return squeeze(narrow(a, d, index < 0 ? index + n : index, 1), d);
}

/// Every slice along `dim`, each with that dimension removed: the inverse of
/// stack(parts, dim).
template <class T>
std::vector<Tensor<T>> unbind(const Tensor<T>& a, Index dim = 0) {
  const Index d = a.shape().wrap_dim(dim, "unbind");
  std::vector<Tensor<T>> out;
  out.reserve(static_cast<std::size_t>(a.shape()[d]));
  for (Index i = 0; i < a.shape()[d]; ++i) out.push_back(select(a, d, i));
  return out;
}

namespace detail {
/// Places g into zeros of `full_shape` at [start::step] along dim; adjoint of slice.
template <class T>
Tensor<T> slice_backward(const Tensor<T>& g, const Shape& full_shape, Index dim, Index start,
                         Index step) {
  Tensor<T> out = zeros<T>(full_shape);
  const auto sp = split_at(full_shape, dim);
  const Index len = g.shape()[dim];
  const T* src = g.data();
  T* dst = out.data();
  for (Index o = 0; o < sp.outer; ++o) {
    for (Index k = 0; k < len; ++k) {
      std::copy_n(src + (o * len + k) * sp.inner, sp.inner,
                  dst + (o * sp.size + start + k * step) * sp.inner);
    }
  }
  record(out, "slice_backward", {&g}, [dim, start, len, step](Node<T>&, const Tensor<T>& gg) {
    return std::vector<Tensor<T>>{slice(gg, dim, start, start + (len - 1) * step + 1, step)};
  });
  return out;
}
}  // namespace detail

/// Joins tensors along an existing dimension.
template <class T>
Tensor<T> concat(const std::vector<Tensor<T>>& parts, Index dim) {
  METALEARN_CHECK(!parts.empty(), ValueError, "concat: no tensors given");
  const Shape& s0 = parts[0].shape();
  const Index d = s0.wrap_dim(dim, "concat");
  Index total = 0;
  for (const auto& t : parts) {
    bool ok = t.dim() == s0.dim();
    for (Index i = 0; ok && i < s0.dim(); ++i) ok = i == d || t.shape()[i] == s0[i];
    METALEARN_CHECK(ok, ShapeError, "concat: shape ", t.shape(), " does not match ", s0,
                    " outside dimension ", d);
    total += t.shape()[d];
  }
  std::vector<Index> od = s0.to_vector();
  od[static_cast<std::size_t>(d)] = total;
  Tensor<T> out = Tensor<T>::empty(Shape(od));
  const auto sp = detail::split_at(out.shape(), d);
  std::vector<Index> sizes;
  Index offset = 0;
  for (const auto& t : parts) {
    const Index len = t.shape()[d];
    sizes.push_back(len);
    for (Index o = 0; o < sp.outer; ++o) {
      std::copy_n(t.data() + o * len * sp.inner, len * sp.inner,
                  out.data() + (o * total + offset) * sp.inner);
    }
    offset += len;
  }
  detail::record_many(out, "concat", parts, [d, sizes](Node<T>& self, const Tensor<T>& g) {
    std::vector<Tensor<T>> grads(sizes.size());
    Index off = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      if (self.needs_input_grad(i)) grads[i] = slice(g, d, off, off + sizes[i]);
      off += sizes[i];
    }
    return grads;
  });
  return out;
}

/// Joins equally shaped tensors along a new dimension.
template <class T>
Tensor<T> stack(const std::vector<Tensor<T>>& parts, Index dim) {
  METALEARN_CHECK(!parts.empty(), ValueError, "stack: no tensors given");
  std::vector<Tensor<T>> u;
  u.reserve(parts.size());
  for (const auto& t : parts) {
    METALEARN_CHECK(t.shape() == parts[0].shape(), ShapeError, "stack: shape ", t.shape(),
                    " differs from ", parts[0].shape());
    u.push_back(unsqueeze(t, dim));
  }
  return concat(u, dim);
}

namespace detail {
template <class T, class I>
Tensor<T> put(const Tensor<T>& values, std::shared_ptr<const std::vector<I>> index,
              const Shape& shape);
}  // namespace detail

/// out[i] = flat(a)[index[i]], with out of shape `shape`. The primitive behind max,
/// index_select and gather. The index elements are Index, or a narrower unsigned type
/// where the flat size fits (half the memory a graph keeps alive with 32 bits).
template <class T, class I>
Tensor<T> take(const Tensor<T>& a, std::shared_ptr<const std::vector<I>> index,
               const Shape& shape) {
  METALEARN_CHECK(static_cast<Index>(index->size()) == shape.numel(), ShapeError,
                  "take: ", index->size(), " indices for output shape ", shape);
  Tensor<T> out = Tensor<T>::empty(shape);
  const T* src = a.data();
  T* dst = out.data();
  const Index n = a.numel();
  for (std::size_t i = 0; i < index->size(); ++i) {
    const auto k = static_cast<Index>((*index)[i]);
    METALEARN_CHECK(k >= 0 && k < n, ShapeError, "take: index ", k, " out of range for ",
                    a.shape());
    dst[i] = src[k];
  }
  detail::record(out, "take", {&a}, [index, sa = a.shape()](Node<T>&, const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::put(g, index, sa)};
  });
  return out;
}

namespace detail {
/// Scatter-add of `values` into zeros of `shape` at flat `index`; adjoint of take.
template <class T, class I>
Tensor<T> put(const Tensor<T>& values, std::shared_ptr<const std::vector<I>> index,
              const Shape& shape) {
  Tensor<T> out = zeros<T>(shape);
  const T* src = values.data();
  T* dst = out.data();
  for (std::size_t i = 0; i < index->size(); ++i) dst[(*index)[i]] += src[i];
  record(out, "put", {&values}, [index, sv = values.shape()](Node<T>&, const Tensor<T>& g) {
    return std::vector<Tensor<T>>{take(g, index, sv)};
  });
  return out;
}
}  // namespace detail

/// Selects entries `index` along `dim`.
template <class T>
Tensor<T> index_select(const Tensor<T>& a, Index dim, const std::vector<Index>& index) {
  const Index d = a.shape().wrap_dim(dim, "index_select");
  const auto sp = detail::split_at(a.shape(), d);
  auto flat = std::make_shared<std::vector<Index>>();
  flat->reserve(static_cast<std::size_t>(sp.outer) * index.size() *
                static_cast<std::size_t>(sp.inner));
  for (Index k : index) {
    METALEARN_CHECK(k >= 0 && k < sp.size, ShapeError, "index_select: index ", k,
                    " out of range for dimension ", d, " of shape ", a.shape());
  }
  for (Index o = 0; o < sp.outer; ++o) {
    for (Index k : index) {
      for (Index i = 0; i < sp.inner; ++i) flat->push_back((o * sp.size + k) * sp.inner + i);
    }
  }
  std::vector<Index> od = a.shape().to_vector();
  od[static_cast<std::size_t>(d)] = static_cast<Index>(index.size());
  return take(a, std::shared_ptr<const std::vector<Index>>(std::move(flat)), Shape(od));
}

/// out[..., i, ...] = a[..., index[..., i, ...], ...] along `dim`; `index_shape` has
/// the shape of the output and equals a.shape() outside `dim`.
template <class T>
Tensor<T> gather(const Tensor<T>& a, Index dim, const std::vector<Index>& index,
                 const Shape& index_shape) {
  const Index d = a.shape().wrap_dim(dim, "gather");
  METALEARN_CHECK(
      index_shape.dim() == a.dim() && static_cast<Index>(index.size()) == index_shape.numel(),
      ShapeError, "gather: index shape ", index_shape, " does not fit input ", a.shape());
  for (Index i = 0; i < a.dim(); ++i) {
    METALEARN_CHECK(i == d || index_shape[i] == a.shape()[i], ShapeError, "gather: index shape ",
                    index_shape, " differs from input ", a.shape(), " outside dimension ", d);
  }
  const auto sp = detail::split_at(a.shape(), d);
  const auto ip = detail::split_at(index_shape, d);
  auto flat = std::make_shared<std::vector<Index>>(index.size());
  for (Index o = 0; o < ip.outer; ++o) {
    for (Index k = 0; k < ip.size; ++k) {
      for (Index i = 0; i < ip.inner; ++i) {
        const Index pos = (o * ip.size + k) * ip.inner + i;
        const Index j = index[static_cast<std::size_t>(pos)];
        METALEARN_CHECK(j >= 0 && j < sp.size, ShapeError, "gather: index ", j,
                        " out of range for dimension ", d, " of shape ", a.shape());
        (*flat)[static_cast<std::size_t>(pos)] = (o * sp.size + j) * sp.inner + i;
      }
    }
  }
  return take(a, std::shared_ptr<const std::vector<Index>>(std::move(flat)), index_shape);
}

}  // namespace metalearn
