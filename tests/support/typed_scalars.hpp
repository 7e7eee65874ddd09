#pragma once
// Scalar type lists and per-type tolerances for typed tests over float and double.

#include <gtest/gtest.h>

#include <string>
#include <type_traits>

namespace metalearn::testing {

/// The scalar types every value test runs over.
using RealTypes = ::testing::Types<float, double>;

/// Names the typed-test instantiations "float" and "double" instead of 0 and 1.
struct RealTypeNames {
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, float> ? "float" : "double";
  }
};

/// Tolerance for comparing a computed value with a hand-computed one: a few ulps
/// of relative error in double, about 1e-5 in float.
template <class T>
constexpr double value_tolerance() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

}  // namespace metalearn::testing
