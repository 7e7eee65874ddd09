#pragma once
/// @file
/// Parameter initialisers (uniform, normal, Xavier/Glorot, Kaiming/He). Each fills
/// a leaf tensor in place with values drawn from an explicit Generator, so the same
/// seed gives the same model.
// SPDX-License-Identifier: MIT

#include <algorithm>
#include <cmath>
#include <utility>

#include "metalearn/core/error.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::nn::init {

/// Nonlinearities for calculate_gain().
enum class Nonlinearity { kLinear, kSigmoid, kTanh, kReLU, kLeakyReLU };
/// Which fan Kaiming initialisation preserves the variance of.
enum class FanMode { kFanIn, kFanOut };

/// The recommended gain for a nonlinearity (PyTorch's values): 1 for linear and
/// sigmoid, 5/3 for tanh, sqrt(2) for ReLU, sqrt(2 / (1 + slope^2)) for leaky ReLU.
inline double calculate_gain(Nonlinearity nonlinearity, double negative_slope = 0.01) {
  switch (nonlinearity) {
    case Nonlinearity::kLinear:
    case Nonlinearity::kSigmoid:
      return 1.0;
    case Nonlinearity::kTanh:
      return 5.0 / 3.0;
    case Nonlinearity::kReLU:
      return std::sqrt(2.0);
    case Nonlinearity::kLeakyReLU:
      return std::sqrt(2.0 / (1.0 + negative_slope * negative_slope));
  }
  return 1.0;
}

/// (fan_in, fan_out) of a weight [out, in, k...]: in * prod(k) and out * prod(k).
inline std::pair<Index, Index> fans(const Shape& shape, const char* function = "init::fans") {
  METALEARN_CHECK(shape.dim() >= 2, ShapeError, function,
                  ": fan in and fan out need a tensor of at least 2 dimensions, got ", shape);
  Index receptive = 1;
  for (Index d = 2; d < shape.dim(); ++d) receptive *= shape[d];
  return {shape[1] * receptive, shape[0] * receptive};
}

namespace detail {
template <class T>
void check_leaf(const Tensor<T>& t, const char* function) {
  METALEARN_CHECK(t.defined() && t.is_leaf(), ValueError, function,
                  ": can only fill a defined leaf tensor");
}
}  // namespace detail

/// Fills `t` with U(lo, hi).
template <class T>
void uniform(const Tensor<T>& t, Generator& gen, double lo = 0.0, double hi = 1.0) {
  detail::check_leaf(t, "init::uniform");
  METALEARN_CHECK(lo <= hi, ValueError, "init::uniform: lo ", lo, " exceeds hi ", hi);
  T* p = t.data();
  for (Index i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(gen.uniform(lo, hi));
  t.bump_version();
}

/// Fills `t` with N(mean, stddev^2).
template <class T>
void normal(const Tensor<T>& t, Generator& gen, double mean = 0.0, double stddev = 1.0) {
  detail::check_leaf(t, "init::normal");
  METALEARN_CHECK(stddev >= 0.0, ValueError, "init::normal: negative stddev ", stddev);
  T* p = t.data();
  for (Index i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(gen.normal(mean, stddev));
  t.bump_version();
}

/// Fills `t` with `value`.
template <class T>
void constant(const Tensor<T>& t, double value) {
  detail::check_leaf(t, "init::constant");
  std::fill_n(t.data(), t.numel(), static_cast<T>(value));
  t.bump_version();
}
template <class T>
void zeros(const Tensor<T>& t) {
  constant(t, 0.0);
}
template <class T>
void ones(const Tensor<T>& t) {
  constant(t, 1.0);
}

/// Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).
template <class T>
void xavier_uniform(const Tensor<T>& t, Generator& gen, double gain = 1.0) {
  const auto [fan_in, fan_out] = fans(t.shape(), "init::xavier_uniform");
  const double a = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  uniform(t, gen, -a, a);
}

/// Glorot normal: N(0, s^2) with s = gain * sqrt(2 / (fan_in + fan_out)).
template <class T>
void xavier_normal(const Tensor<T>& t, Generator& gen, double gain = 1.0) {
  const auto [fan_in, fan_out] = fans(t.shape(), "init::xavier_normal");
  normal(t, gen, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)));
}

/// He uniform: U(-b, b) with b = gain * sqrt(3 / fan), gain = calculate_gain(
/// nonlinearity, a). With a = sqrt(5) and leaky ReLU this is PyTorch's default
/// Linear/Conv weight init, b = 1 / sqrt(fan_in).
template <class T>
void kaiming_uniform(const Tensor<T>& t, Generator& gen, double a = 0.0,
                     FanMode mode = FanMode::kFanIn,
                     Nonlinearity nonlinearity = Nonlinearity::kLeakyReLU) {
  const auto [fan_in, fan_out] = fans(t.shape(), "init::kaiming_uniform");
  const double fan = static_cast<double>(mode == FanMode::kFanIn ? fan_in : fan_out);
  METALEARN_CHECK(fan > 0, ShapeError, "init::kaiming_uniform: zero fan for shape ", t.shape());
  const double bound = calculate_gain(nonlinearity, a) * std::sqrt(3.0 / fan);
  uniform(t, gen, -bound, bound);
}

/// He normal: N(0, s^2) with s = gain / sqrt(fan).
template <class T>
void kaiming_normal(const Tensor<T>& t, Generator& gen, double a = 0.0,
                    FanMode mode = FanMode::kFanIn,
                    Nonlinearity nonlinearity = Nonlinearity::kLeakyReLU) {
  const auto [fan_in, fan_out] = fans(t.shape(), "init::kaiming_normal");
  const double fan = static_cast<double>(mode == FanMode::kFanIn ? fan_in : fan_out);
  METALEARN_CHECK(fan > 0, ShapeError, "init::kaiming_normal: zero fan for shape ", t.shape());
  normal(t, gen, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(fan));
}

}  // namespace metalearn::nn::init
