#pragma once
// Assertions on tensor shapes and values with readable failure messages.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <sstream>
#include <vector>

#include "metalearn/tensor.hpp"
#include "support/typed_scalars.hpp"

namespace metalearn::testing {

/// Succeeds when `t` has shape `shape` and every value is within
/// tol * max(1, |expected|) of `expected` (row-major order).
template <class T>
::testing::AssertionResult values_near(const Tensor<T>& t, const Shape& shape,
                                       const std::vector<double>& expected,
                                       double tol = value_tolerance<T>()) {
  if (!t.defined()) return ::testing::AssertionFailure() << "tensor is undefined";
  if (t.shape() != shape) {
    return ::testing::AssertionFailure() << "shape " << t.shape() << ", expected " << shape;
  }
  if (static_cast<std::size_t>(t.numel()) != expected.size()) {
    return ::testing::AssertionFailure()
           << t.numel() << " elements but " << expected.size() << " expected values";
  }
  std::ostringstream bad;
  int mismatches = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double got = static_cast<double>(t.data()[i]);
    const double want = expected[i];
    const double err = std::abs(got - want);
    if (!(err <= tol * std::max(1.0, std::abs(want)))) {
      if (mismatches++ < 6) bad << "\n  [" << i << "] got " << got << ", expected " << want;
    }
  }
  if (mismatches > 0) {
    return ::testing::AssertionFailure()
           << mismatches << " of " << expected.size() << " values differ (tolerance " << tol
           << ") in tensor of shape " << shape << ":" << bad.str();
  }
  return ::testing::AssertionSuccess();
}

/// Succeeds when both tensors have the same shape and bitwise-equal values.
template <class T>
::testing::AssertionResult bitwise_equal(const Tensor<T>& a, const Tensor<T>& b) {
  if (a.shape() != b.shape()) {
    return ::testing::AssertionFailure() << "shapes " << a.shape() << " and " << b.shape();
  }
  for (Index i = 0; i < a.numel(); ++i) {
    if (std::memcmp(a.data() + i, b.data() + i, sizeof(T)) != 0) {
      return ::testing::AssertionFailure()
             << "element " << i << " differs: " << a.data()[i] << " vs " << b.data()[i];
    }
  }
  return ::testing::AssertionSuccess();
}

/// A tensor of type T from double literals.
template <class T>
Tensor<T> make(const Shape& shape, const std::vector<double>& values) {
  std::vector<T> v(values.begin(), values.end());
  return from_vector<T>(v, shape);
}

}  // namespace metalearn::testing
