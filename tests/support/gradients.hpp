#pragma once
// One-call gradient checks for tests: first order (gradcheck) and second order
// (gradgradcheck) in double, on given inputs or on random inputs drawn from a seed.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "metalearn/autograd.hpp"
#include "metalearn/tensor.hpp"

namespace metalearn::testing {

/// How check_gradients draws inputs and what it checks.
struct GradientSpec {
  double lo = -1.0;  ///< random inputs are uniform in [lo, hi)
  double hi = 1.0;
  std::uint64_t seed = 1;    ///< seed of the random inputs
  bool second_order = true;  ///< also run gradgradcheck
  autograd::GradcheckOptions options{};
};

/// |a - b| / |b| in the Euclidean norm (b: the reference, e.g. central differences);
/// the vectors have the same length.
inline double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

/// Random double inputs of the given shapes, uniform in [lo, hi), from `seed`.
inline std::vector<Tensor<double>> random_inputs(const std::vector<Shape>& shapes, double lo,
                                                 double hi, std::uint64_t seed) {
  Generator gen(seed);
  std::vector<Tensor<double>> xs;
  xs.reserve(shapes.size());
  for (const auto& s : shapes) xs.push_back(uniform<double>(s, gen, lo, hi));
  return xs;
}

/// Runs gradcheck (and gradgradcheck) of f at `inputs`; the failure message lists
/// the input shapes and the mismatching Jacobian entries.
inline ::testing::AssertionResult check_gradients_at(const autograd::DifferentiableFunction& f,
                                                     const std::vector<Tensor<double>>& inputs,
                                                     const GradientSpec& spec = {}) {
  auto describe = [&inputs] {
    std::ostringstream os;
    os << "inputs:";
    for (const auto& x : inputs) os << "\n  " << x;
    return os.str();
  };
  try {
    const auto first = autograd::gradcheck(f, inputs, spec.options);
    if (!first.ok) {
      return ::testing::AssertionFailure() << first.message << describe();
    }
    if (spec.second_order) {
      const auto second = autograd::gradgradcheck(f, inputs, spec.options);
      if (!second.ok) {
        return ::testing::AssertionFailure() << second.message << describe();
      }
    }
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "gradient check threw: " << e.what() << "\n"
                                         << describe();
  }
  return ::testing::AssertionSuccess();
}

/// As check_gradients_at, on random inputs of the given shapes.
inline ::testing::AssertionResult check_gradients(const autograd::DifferentiableFunction& f,
                                                  const std::vector<Shape>& shapes,
                                                  const GradientSpec& spec = {}) {
  return check_gradients_at(f, random_inputs(shapes, spec.lo, spec.hi, spec.seed), spec);
}

}  // namespace metalearn::testing
