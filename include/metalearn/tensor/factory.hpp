#pragma once
/// @file
/// Factories: zeros, ones, full, arange, from_vector, from_eigen, randn, uniform.

#include <algorithm>
#include <cmath>
#include <vector>

#include "metalearn/core/eigen.hpp"

#include "metalearn/core/checked.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/shape.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn {

/// A tensor filled with `value`.
template <class T>
Tensor<T> full(const Shape& shape, T value) {
  Tensor<T> t = Tensor<T>::empty(shape);
  std::fill_n(t.data(), t.numel(), value);
  return t;
}

template <class T>
Tensor<T> zeros(const Shape& shape) {
  return full<T>(shape, T(0));
}

template <class T>
Tensor<T> ones(const Shape& shape) {
  return full<T>(shape, T(1));
}

template <class T>
Tensor<T> zeros_like(const Tensor<T>& t) {
  return zeros<T>(t.shape());
}

template <class T>
Tensor<T> ones_like(const Tensor<T>& t) {
  return ones<T>(t.shape());
}

/// A 0-dim tensor holding `value`.
template <class T>
Tensor<T> scalar(T value) {
  return full<T>(Shape{}, value);
}

/// [start, start + step, ...) up to (excluding) `end`, as a 1-D tensor.
template <class T>
Tensor<T> arange(T start, T end, T step = T(1)) {
  METALEARN_CHECK(step != T(0), ValueError, "arange: step must be non-zero");
  METALEARN_CHECK(std::isfinite(start) && std::isfinite(end) && std::isfinite(step), ValueError,
                  "arange: start ", start, ", end ", end, " and step ", step, " must be finite");
  const auto n = checked_cast<Index>(
      std::max<double>(0.0, std::ceil((static_cast<double>(end) - static_cast<double>(start)) /
                                      static_cast<double>(step))),
      "arange: element count");
  Tensor<T> t = Tensor<T>::empty(Shape{n});
  for (Index i = 0; i < n; ++i) t.data()[i] = start + static_cast<T>(i) * step;
  return t;
}

/// Copies `values` into a tensor of the given shape (1-D when omitted).
template <class T>
Tensor<T> from_vector(const std::vector<T>& values, const Shape& shape) {
  METALEARN_CHECK(static_cast<Index>(values.size()) == shape.numel(), ShapeError,
                  "from_vector: ", values.size(), " values do not fill shape ", shape);
  Tensor<T> t = Tensor<T>::empty(shape);
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

template <class T>
Tensor<T> from_vector(const std::vector<T>& values) {
  return from_vector(values, Shape{static_cast<Index>(values.size())});
}

/// Copies an Eigen matrix or array expression into a 2-D tensor (row-major).
template <class Derived>
auto from_eigen(const Eigen::DenseBase<Derived>& m) {
  using T = typename Derived::Scalar;
  Tensor<T> t = Tensor<T>::empty(Shape{m.rows(), m.cols()});
  t.matrix() = m.derived().matrix();
  return t;
}

/// A row-major Eigen copy of a tensor of at most 2 dimensions.
template <class T>
typename Tensor<T>::EigenMatrix to_eigen(const Tensor<T>& t) {
  return t.matrix();
}

/// Standard-normal samples drawn from `gen`.
template <class T>
Tensor<T> randn(const Shape& shape, Generator& gen, T mean = T(0), T stddev = T(1)) {
  Tensor<T> t = Tensor<T>::empty(shape);
  for (Index i = 0; i < t.numel(); ++i) {
    t.data()[i] =
        static_cast<T>(gen.normal(static_cast<double>(mean), static_cast<double>(stddev)));
  }
  return t;
}

/// Uniform samples in [lo, hi) drawn from `gen`.
template <class T>
Tensor<T> uniform(const Shape& shape, Generator& gen, T lo = T(0), T hi = T(1)) {
  Tensor<T> t = Tensor<T>::empty(shape);
  for (Index i = 0; i < t.numel(); ++i) {
    t.data()[i] = static_cast<T>(gen.uniform(static_cast<double>(lo), static_cast<double>(hi)));
  }
  return t;
}

}  // namespace metalearn
