#pragma once
/// @file
/// Differentiable reductions: sum, mean, max, logsumexp, softmax, log_softmax.

#include <cmath>
#include <limits>
#include <vector>

#include "metalearn/autograd/node.hpp"
#include "metalearn/tensor/detail/kernels.hpp"
#include "metalearn/tensor/ops/elementwise.hpp"
#include "metalearn/tensor/ops/shape_ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn {

/// Sum of all elements (0-dim result).
template <class T>
Tensor<T> sum(const Tensor<T>& a) {
  Tensor<T> out = Tensor<T>::empty(Shape{});
  out.data()[0] = detail::sum_contiguous<T>(a.data(), a.numel());
  detail::record(out, "sum", {&a}, [sa = a.shape()](Node<T>&, const Tensor<T>& g) {
    return std::vector<Tensor<T>>{expand(g, sa)};
  });
  return out;
}

/// Sum along `dim`.
template <class T>
Tensor<T> sum(const Tensor<T>& a, Index dim, bool keepdim = false) {
  const Index d = a.shape().wrap_dim(dim, "sum");
  const auto sp = detail::split_at(a.shape(), d);
  Tensor<T> out = zeros<T>(detail::reduced_shape(a.shape(), d, keepdim));
  const T* src = a.data();
  T* dst = out.data();
  for (Index o = 0; o < sp.outer; ++o) {
    T* row = dst + o * sp.inner;
    for (Index k = 0; k < sp.size; ++k) {
      const T* s = src + (o * sp.size + k) * sp.inner;
      for (Index i = 0; i < sp.inner; ++i) row[i] += s[i];
    }
  }
  detail::record(out, "sum_dim", {&a}, [sa = a.shape(), d](Node<T>&, const Tensor<T>& g) {
    return std::vector<Tensor<T>>{expand(reshape(g, detail::reduced_shape(sa, d, true)), sa)};
  });
  return out;
}

/// Sum over several dimensions, in one pass over `a`.
template <class T>
Tensor<T> sum(const Tensor<T>& a, std::vector<Index> dims, bool keepdim = false) {
  std::vector<Index> kept = a.shape().to_vector();
  for (auto& d : dims) {
    d = a.shape().wrap_dim(d, "sum");
    kept[static_cast<std::size_t>(d)] = 1;
  }
  Tensor<T> out = sum_to(a, Shape(kept));
  if (!keepdim) {
    std::vector<Index> od;
    for (Index i = 0; i < a.dim(); ++i) {
      if (std::find(dims.begin(), dims.end(), i) == dims.end()) od.push_back(a.shape()[i]);
    }
    out = reshape(out, std::move(od));
  }
  return out;
}

template <class T>
Tensor<T> mean(const Tensor<T>& a) {
  METALEARN_CHECK(a.numel() > 0, ShapeError, "mean: empty tensor of shape ", a.shape());
  return mul_scalar(sum(a), T(1) / static_cast<T>(a.numel()));
}

template <class T>
Tensor<T> mean(const Tensor<T>& a, Index dim, bool keepdim = false) {
  const Index d = a.shape().wrap_dim(dim, "mean");
  METALEARN_CHECK(a.shape()[d] > 0, ShapeError, "mean: empty dimension ", d, " of ", a.shape());
  return mul_scalar(sum(a, d, keepdim), T(1) / static_cast<T>(a.shape()[d]));
}

template <class T>
Tensor<T> mean(const Tensor<T>& a, const std::vector<Index>& dims, bool keepdim = false) {
  Index n = 1;
  for (Index d : dims) n *= a.shape()[a.shape().wrap_dim(d, "mean")];
  METALEARN_CHECK(n > 0, ShapeError, "mean: empty reduction over shape ", a.shape());
  return mul_scalar(sum(a, dims, keepdim), T(1) / static_cast<T>(n));
}

/// Index of the largest element along `dim` for each position of the other dims
/// (first one on ties). Not differentiable.
template <class T>
std::vector<Index> argmax(const Tensor<T>& a, Index dim) {
  const Index d = a.shape().wrap_dim(dim, "argmax");
  const auto sp = detail::split_at(a.shape(), d);
  METALEARN_CHECK(sp.size > 0, ShapeError, "argmax: empty dimension ", d, " of ", a.shape());
  std::vector<Index> out(static_cast<std::size_t>(sp.outer * sp.inner));
  const T* p = a.data();
  for (Index o = 0; o < sp.outer; ++o) {
    for (Index i = 0; i < sp.inner; ++i) {
      Index best = 0;
      T bv = p[o * sp.size * sp.inner + i];
      for (Index k = 1; k < sp.size; ++k) {
        const T v = p[(o * sp.size + k) * sp.inner + i];
        if (v > bv || (std::isnan(v) && !std::isnan(bv))) {
          bv = v;
          best = k;
        }
      }
      out[static_cast<std::size_t>(o * sp.inner + i)] = best;
    }
  }
  return out;
}

/// Largest element (0-dim); the gradient flows to the first maximal element.
template <class T>
Tensor<T> max(const Tensor<T>& a) {
  METALEARN_CHECK(a.numel() > 0, ShapeError, "max: empty tensor");
  const auto idx = argmax(reshape(a.detach(), std::vector<Index>{a.numel()}), 0);
  return take(a, std::make_shared<const std::vector<Index>>(idx), Shape{});
}

/// Largest element along `dim`; the gradient flows to the first maximal element.
template <class T>
Tensor<T> max(const Tensor<T>& a, Index dim, bool keepdim = false) {
  const Index d = a.shape().wrap_dim(dim, "max");
  const auto sp = detail::split_at(a.shape(), d);
  const auto am = argmax(a, d);
  auto flat = std::make_shared<std::vector<Index>>(am.size());
  for (Index o = 0; o < sp.outer; ++o) {
    for (Index i = 0; i < sp.inner; ++i) {
      const auto pos = static_cast<std::size_t>(o * sp.inner + i);
      (*flat)[pos] = (o * sp.size + am[pos]) * sp.inner + i;
    }
  }
  return take(a, std::shared_ptr<const std::vector<Index>>(std::move(flat)),
              detail::reduced_shape(a.shape(), d, keepdim));
}

/// log(sum(exp(a), dim)), computed stably.
template <class T>
Tensor<T> logsumexp(const Tensor<T>& a, Index dim, bool keepdim = false) {
  const Index d = a.shape().wrap_dim(dim, "logsumexp");
  const auto sp = detail::split_at(a.shape(), d);
  Tensor<T> out = Tensor<T>::empty(detail::reduced_shape(a.shape(), d, keepdim));
  const T* src = a.data();
  T* dst = out.data();
  for (Index o = 0; o < sp.outer; ++o) {
    for (Index i = 0; i < sp.inner; ++i) {
      T m = -std::numeric_limits<T>::infinity();
      for (Index k = 0; k < sp.size; ++k) m = std::max(m, src[(o * sp.size + k) * sp.inner + i]);
      T s = T(0);
      if (std::isfinite(m)) {
        for (Index k = 0; k < sp.size; ++k)
          s += std::exp(src[(o * sp.size + k) * sp.inner + i] - m);
        dst[o * sp.inner + i] = m + std::log(s);
      } else {
        dst[o * sp.inner + i] = m;
      }
    }
  }
  detail::record(
      out, "logsumexp", {&a},
      [a, d](Node<T>& self, const Tensor<T>& g) {
        const Shape kd = detail::reduced_shape(a.shape(), d, true);
        Tensor<T> y = reshape(self.output(), kd);
        Tensor<T> p = exp(sub(a, y));
        return std::vector<Tensor<T>>{mul(reshape(g, kd), p)};
      },
      detail::SaveOutput::kYes);
  return out;
}

/// Log of all elements' summed exponentials (0-dim).
template <class T>
Tensor<T> logsumexp(const Tensor<T>& a) {
  return logsumexp(reshape(a, std::vector<Index>{a.numel()}), 0);
}

/// exp(a) / sum(exp(a), dim).
template <class T>
Tensor<T> softmax(const Tensor<T>& a, Index dim) {
  const Index d = a.shape().wrap_dim(dim, "softmax");
  const auto sp = detail::split_at(a.shape(), d);
  Tensor<T> out = Tensor<T>::empty(a.shape());
  const T* src = a.data();
  T* dst = out.data();
  for (Index o = 0; o < sp.outer; ++o) {
    for (Index i = 0; i < sp.inner; ++i) {
      T m = -std::numeric_limits<T>::infinity();
      for (Index k = 0; k < sp.size; ++k) m = std::max(m, src[(o * sp.size + k) * sp.inner + i]);
      T s = T(0);
      for (Index k = 0; k < sp.size; ++k) {
        const Index at = (o * sp.size + k) * sp.inner + i;
        dst[at] = std::exp(src[at] - m);
        s += dst[at];
      }
      for (Index k = 0; k < sp.size; ++k) dst[(o * sp.size + k) * sp.inner + i] /= s;
    }
  }
  detail::record(
      out, "softmax", {&a},
      [d](Node<T>& self, const Tensor<T>& g) {
        Tensor<T> y = self.output();
        Tensor<T> gy = mul(g, y);
        return std::vector<Tensor<T>>{sub(gy, mul(y, sum(gy, d, true)))};
      },
      detail::SaveOutput::kYes);
  return out;
}

/// a - logsumexp(a, dim), computed stably.
template <class T>
Tensor<T> log_softmax(const Tensor<T>& a, Index dim) {
  const Index d = a.shape().wrap_dim(dim, "log_softmax");
  const auto sp = detail::split_at(a.shape(), d);
  Tensor<T> out = Tensor<T>::empty(a.shape());
  const T* src = a.data();
  T* dst = out.data();
  for (Index o = 0; o < sp.outer; ++o) {
    for (Index i = 0; i < sp.inner; ++i) {
      T m = -std::numeric_limits<T>::infinity();
      for (Index k = 0; k < sp.size; ++k) m = std::max(m, src[(o * sp.size + k) * sp.inner + i]);
      T s = T(0);
      for (Index k = 0; k < sp.size; ++k) s += std::exp(src[(o * sp.size + k) * sp.inner + i] - m);
      const T lse = m + std::log(s);
      for (Index k = 0; k < sp.size; ++k) {
        const Index at = (o * sp.size + k) * sp.inner + i;
        dst[at] = src[at] - lse;
      }
    }
  }
  detail::record(
      out, "log_softmax", {&a},
      [d](Node<T>& self, const Tensor<T>& g) {
        Tensor<T> p = exp(self.output());
        return std::vector<Tensor<T>>{sub(g, mul(p, sum(g, d, true)))};
      },
      detail::SaveOutput::kYes);
  return out;
}

}  // namespace metalearn
