#pragma once
/// @file
/// Differentiable elementwise ops with numpy broadcasting. Every backward rule is
/// written with these same ops, so it can be differentiated again.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "metalearn/autograd/node.hpp"
#include "metalearn/tensor/detail/kernels.hpp"
#include "metalearn/tensor/detail/simd_kernels.hpp"
#include "metalearn/tensor/factory.hpp"
#include "metalearn/tensor/ops/shape_ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn {

namespace detail {
/// A constant (no-grad) tensor of f(x) for masks and signs used by backward rules.
template <class T, class F>
Tensor<T> constant_map(const Tensor<T>& x, F f) {
  return map_unary(x, f);
}
}  // namespace detail

template <class T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> out = detail::map_binary(a, b, "add", [](T x, T y) { return x + y; });
  detail::record(
      out, "add", {&a, &b}, [sa = a.shape(), sb = b.shape()](Node<T>& self, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{self.needs_input_grad(0) ? sum_to(g, sa) : Tensor<T>(),
                                      self.needs_input_grad(1) ? sum_to(g, sb) : Tensor<T>()};
      });
  return out;
}

/// acc = acc + g for gradient sums. When acc is the only handle on its values (no
/// other tensor, view or graph node shares them) and neither side is recorded, g is
/// added into acc's storage instead of into a new tensor; the values are the same.
/// An undefined acc becomes g.
template <class T>
void add_to(Tensor<T>& acc, const Tensor<T>& g) {
  if (!acc.defined()) {
    acc = g;
    return;
  }
  const bool in_place = acc.shape() == g.shape() && !acc.requires_grad() && !g.requires_grad() &&
                        acc.impl_ptr().use_count() == 1 && acc.storage().use_count() == 1;
  if (!in_place) {
    acc = add(acc, g);
    return;
  }
  T* pa = acc.data();
  const T* pg = g.data();
  detail::for_elementwise_blocks(acc.numel(), [&](Index lo, Index hi) {
    for (Index i = lo; i < hi; ++i) pa[i] = pa[i] + pg[i];
  });
}

template <class T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> out = detail::map_binary(a, b, "sub", [](T x, T y) { return x - y; });
  detail::record(
      out, "sub", {&a, &b}, [sa = a.shape(), sb = b.shape()](Node<T>& self, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{self.needs_input_grad(0) ? sum_to(g, sa) : Tensor<T>(),
                                      self.needs_input_grad(1) ? sum_to(neg(g), sb) : Tensor<T>()};
      });
  return out;
}

template <class T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> out = detail::map_binary(a, b, "mul", [](T x, T y) { return x * y; });
  // Each side's gradient reads the other side only, so a side is kept only when the
  // other needs a gradient: a product with a constant (a mask, a sign) does not keep
  // the gradient it scales alive.
  detail::record(out, "mul", {&a, &b},
                 [sa = a.shape(), sb = b.shape(), keep_a = detail::keep_for(a, b),
                  keep_b = detail::keep_for(b, a)](Node<T>& self, const Tensor<T>& g) {
                   return std::vector<Tensor<T>>{
                       self.needs_input_grad(0) ? sum_to(mul(g, keep_b), sa) : Tensor<T>(),
                       self.needs_input_grad(1) ? sum_to(mul(g, keep_a), sb) : Tensor<T>()};
                 });
  return out;
}

template <class T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> out = detail::map_binary(a, b, "div", [](T x, T y) { return x / y; });
  detail::record(out, "div", {&a, &b}, [a, b](Node<T>& self, const Tensor<T>& g) {
    Tensor<T> ga;
    Tensor<T> gb;
    if (self.needs_input_grad(0)) ga = sum_to(div(g, b), a.shape());
    if (self.needs_input_grad(1)) gb = sum_to(neg(div(mul(g, a), mul(b, b))), b.shape());
    return std::vector<Tensor<T>>{ga, gb};
  });
  return out;
}

template <class T>
Tensor<T> add_scalar(const Tensor<T>& a, T s) {
  Tensor<T> out = detail::map_unary(a, [s](T x) { return x + s; });
  detail::record(out, "add_scalar", {&a},
                 [](Node<T>&, const Tensor<T>& g) { return std::vector<Tensor<T>>{g}; });
  return out;
}

template <class T>
Tensor<T> mul_scalar(const Tensor<T>& a, T s) {
  Tensor<T> out = detail::map_unary(a, [s](T x) { return x * s; });
  detail::record(out, "mul_scalar", {&a}, [s](Node<T>&, const Tensor<T>& g) {
    return std::vector<Tensor<T>>{mul_scalar(g, s)};
  });
  return out;
}

template <class T>
Tensor<T> neg(const Tensor<T>& a) {
  Tensor<T> out = detail::map_unary(a, [](T x) { return -x; });
  detail::record(out, "neg", {&a},
                 [](Node<T>&, const Tensor<T>& g) { return std::vector<Tensor<T>>{neg(g)}; });
  return out;
}

/// 1 / a.
template <class T>
Tensor<T> reciprocal(const Tensor<T>& a) {
  Tensor<T> out = detail::map_unary(a, [](T x) { return T(1) / x; });
  detail::record(
      out, "reciprocal", {&a},
      [](Node<T>& self, const Tensor<T>& g) {
        Tensor<T> y = self.output();
        return std::vector<Tensor<T>>{neg(mul(g, mul(y, y)))};
      },
      detail::SaveOutput::kYes);
  return out;
}

/// a raised to a constant power p.
template <class T>
Tensor<T> pow(const Tensor<T>& a, T p) {
  Tensor<T> out = detail::map_unary(a, [p](T x) { return std::pow(x, p); });
  detail::record(out, "pow", {&a}, [a, p](Node<T>&, const Tensor<T>& g) {
    if (p == T(0)) return std::vector<Tensor<T>>{zeros_like(g)};
    return std::vector<Tensor<T>>{mul(g, mul_scalar(pow(a, p - T(1)), p))};
  });
  return out;
}

template <class T>
Tensor<T> square(const Tensor<T>& a) {
  Tensor<T> out = detail::map_unary(a, [](T x) { return x * x; });
  detail::record(out, "square", {&a}, [a](Node<T>&, const Tensor<T>& g) {
    return std::vector<Tensor<T>>{mul(g, mul_scalar(a, T(2)))};
  });
  return out;
}

template <class T>
Tensor<T> sqrt(const Tensor<T>& a) {
  Tensor<T> out = detail::map_unary(a, [](T x) { return std::sqrt(x); });
  detail::record(
      out, "sqrt", {&a},
      [](Node<T>& self, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{div(g, mul_scalar(self.output(), T(2)))};
      },
      detail::SaveOutput::kYes);
  return out;
}

template <class T>
Tensor<T> exp(const Tensor<T>& a) {
  Tensor<T> out = detail::map_unary(a, [](T x) { return std::exp(x); });
  detail::record(
      out, "exp", {&a},
      [](Node<T>& self, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{mul(g, self.output())};
      },
      detail::SaveOutput::kYes);
  return out;
}

template <class T>
Tensor<T> log(const Tensor<T>& a) {
  Tensor<T> out = detail::map_unary(a, [](T x) { return std::log(x); });
  detail::record(out, "log", {&a},
                 [a](Node<T>&, const Tensor<T>& g) { return std::vector<Tensor<T>>{div(g, a)}; });
  return out;
}

/// |a|; the gradient at 0 is 0.
template <class T>
Tensor<T> abs(const Tensor<T>& a) {
  Tensor<T> out = detail::map_unary(a, [](T x) { return std::abs(x); });
  detail::record(out, "abs", {&a}, [a](Node<T>&, const Tensor<T>& g) {
    auto sign = detail::constant_map(a, [](T x) { return T((x > T(0)) - (x < T(0))); });
    return std::vector<Tensor<T>>{mul(g, sign)};
  });
  return out;
}

namespace detail {
/// Where relu's input was positive, a byte per element: what relu's backward keeps
/// instead of the input (a quarter of its size, and the input can be freed).
struct PositiveMask {
  std::shared_ptr<const std::uint8_t[]> bytes;
  Index size = 0;
};

/// g where the mask is set, else 0: relu's backward, recorded as an op of g alone (its
/// derivative in relu's input is zero almost everywhere). Its own backward is the same
/// mask applied to the upstream gradient, so every order reads the same bytes.
template <class T>
Tensor<T> mask_positive(const Tensor<T>& g, const PositiveMask& mask) {
  METALEARN_CHECK(g.numel() == mask.size, ShapeError, "relu backward: gradient of shape ",
                  g.shape(), " for an input of ", mask.size, " values");
  Tensor<T> out = Tensor<T>::empty(g.shape());
  for_elementwise_blocks(
      g.numel(), [pg = g.data(), pm = mask.bytes.get(), po = out.data()](Index lo, Index hi) {
        // Unaliased locals and an unconditional load, so the loop is vectorised.
        const T* __restrict src = pg;
        const std::uint8_t* __restrict keep = pm;
        T* __restrict dst = po;
        for (Index i = lo; i < hi; ++i) {
          const T v = src[i];
          dst[i] = keep[i] != 0 ? v : T(0);
        }
      });
  record(out, "relu_backward", {&g}, [mask](Node<T>&, const Tensor<T>& a) {
    return std::vector<Tensor<T>>{mask_positive(a, mask)};
  });
  return out;
}
}  // namespace detail

/// max(a, 0); the gradient at 0 is 0. A recorded relu keeps a byte mask of where a
/// is positive, not a itself.
template <class T>
Tensor<T> relu(const Tensor<T>& a) {
  Tensor<T> out = detail::map_unary(a, [](T x) { return x > T(0) ? x : T(0); });
  // The mask is made only when the op is recorded; record() checks the output either way.
  detail::PositiveMask mask;
  if (detail::should_record<T>({&a})) {
    std::shared_ptr<std::uint8_t[]> bytes = detail::allocate<std::uint8_t>(a.numel());
    detail::for_elementwise_blocks(a.numel(),
                                   [pa = a.data(), pm = bytes.get()](Index lo, Index hi) {
                                     const T* __restrict src = pa;
                                     std::uint8_t* __restrict dst = pm;
                                     for (Index i = lo; i < hi; ++i) dst[i] = src[i] > T(0) ? 1 : 0;
                                   });
    mask = detail::PositiveMask{std::move(bytes), a.numel()};
  }
  detail::record(out, "relu", {&a}, [mask = std::move(mask)](Node<T>&, const Tensor<T>& g) {
    return std::vector<Tensor<T>>{detail::mask_positive(g, mask)};
  });
  return out;
}

template <class T>
Tensor<T> leaky_relu(const Tensor<T>& a, T negative_slope = T(0.01)) {
  Tensor<T> out =
      detail::map_unary(a, [negative_slope](T x) { return x > T(0) ? x : negative_slope * x; });
  detail::record(out, "leaky_relu", {&a}, [a, negative_slope](Node<T>&, const Tensor<T>& g) {
    auto slope =
        detail::constant_map(a, [negative_slope](T x) { return x > T(0) ? T(1) : negative_slope; });
    return std::vector<Tensor<T>>{mul(g, slope)};
  });
  return out;
}

namespace detail {
/// out[i] = f(a[i]) through a compiled float kernel (simd_kernels.hpp) over blocks.
template <class T>
Tensor<T> map_float_kernel(const Tensor<T>& a, void (*kernel)(const float*, float*, Index)) {
  Tensor<T> out = Tensor<T>::empty(a.shape());
  for_elementwise_blocks(a.numel(), [kernel, pa = a.data(), po = out.data()](Index lo, Index hi) {
    kernel(pa + lo, po + lo, hi - lo);
  });
  return out;
}
}  // namespace detail

/// The logistic function 1 / (1 + exp(-a)), without overflow for large |a|. float runs
/// a vectorised kernel that gives the same bits on every instruction set (within 2 ulp
/// of the exact value); double uses libm (detail::logistic).
template <class T>
Tensor<T> sigmoid(const Tensor<T>& a) {
  Tensor<T> out;
  if constexpr (std::is_same_v<T, float>) {
    out = detail::map_float_kernel(a, &detail::sigmoid_values);
  } else {
    out = detail::map_unary(a, [](T x) { return static_cast<T>(detail::logistic(x)); });
  }
  detail::record(
      out, "sigmoid", {&a},
      [](Node<T>& self, const Tensor<T>& g) {
        Tensor<T> y = self.output();
        return std::vector<Tensor<T>>{mul(g, sub(y, mul(y, y)))};
      },
      detail::SaveOutput::kYes);
  return out;
}

/// Hyperbolic tangent. float runs a vectorised kernel that gives the same bits on every
/// instruction set (within 2 ulp of the exact value); double uses std::tanh.
template <class T>
Tensor<T> tanh(const Tensor<T>& a) {
  Tensor<T> out;
  if constexpr (std::is_same_v<T, float>) {
    out = detail::map_float_kernel(a, &detail::tanh_values);
  } else {
    out = detail::map_unary(a, [](T x) { return std::tanh(x); });
  }
  detail::record(
      out, "tanh", {&a},
      [](Node<T>& self, const Tensor<T>& g) {
        Tensor<T> y = self.output();
        return std::vector<Tensor<T>>{mul(g, add_scalar(neg(mul(y, y)), T(1)))};
      },
      detail::SaveOutput::kYes);
  return out;
}

/// log(1 + exp(a)), computed without overflow.
template <class T>
Tensor<T> softplus(const Tensor<T>& a) {
  Tensor<T> out = detail::map_unary(
      a, [](T x) { return std::max(x, T(0)) + std::log1p(std::exp(-std::abs(x))); });
  detail::record(out, "softplus", {&a}, [a](Node<T>&, const Tensor<T>& g) {
    return std::vector<Tensor<T>>{mul(g, sigmoid(a))};
  });
  return out;
}

/// Clamps to [lo, hi]; the gradient passes where lo <= a <= hi.
template <class T>
Tensor<T> clamp(const Tensor<T>& a, T lo, T hi) {
  METALEARN_CHECK(lo <= hi, ValueError, "clamp: lower bound ", lo, " exceeds upper bound ", hi);
  Tensor<T> out = detail::map_unary(a, [lo, hi](T x) { return std::min(std::max(x, lo), hi); });
  detail::record(out, "clamp", {&a}, [a, lo, hi](Node<T>&, const Tensor<T>& g) {
    auto mask = detail::constant_map(a, [lo, hi](T x) { return x >= lo && x <= hi ? T(1) : T(0); });
    return std::vector<Tensor<T>>{mul(g, mask)};
  });
  return out;
}

// ---- operators ---------------------------------------------------------------

template <class T>
Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) {
  return add(a, b);
}
template <class T>
Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) {
  return sub(a, b);
}
template <class T>
Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) {
  return mul(a, b);
}
template <class T>
Tensor<T> operator/(const Tensor<T>& a, const Tensor<T>& b) {
  return div(a, b);
}
template <class T>
Tensor<T> operator-(const Tensor<T>& a) {
  return neg(a);
}
template <class T>
Tensor<T> operator+(const Tensor<T>& a, std::type_identity_t<T> s) {
  return add_scalar(a, s);
}
template <class T>
Tensor<T> operator+(std::type_identity_t<T> s, const Tensor<T>& a) {
  return add_scalar(a, s);
}
template <class T>
Tensor<T> operator-(const Tensor<T>& a, std::type_identity_t<T> s) {
  return add_scalar(a, -s);
}
template <class T>
Tensor<T> operator-(std::type_identity_t<T> s, const Tensor<T>& a) {
  return add_scalar(neg(a), s);
}
template <class T>
Tensor<T> operator*(const Tensor<T>& a, std::type_identity_t<T> s) {
  return mul_scalar(a, s);
}
template <class T>
Tensor<T> operator*(std::type_identity_t<T> s, const Tensor<T>& a) {
  return mul_scalar(a, s);
}
template <class T>
Tensor<T> operator/(const Tensor<T>& a, std::type_identity_t<T> s) {
  return mul_scalar(a, T(1) / s);
}
template <class T>
Tensor<T> operator/(std::type_identity_t<T> s, const Tensor<T>& a) {
  return mul_scalar(reciprocal(a), s);
}

}  // namespace metalearn
