// The GRU gates op (gru_gates) and the float sigmoid and tanh kernels it runs on.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "metalearn/autograd.hpp"
#include "metalearn/tensor.hpp"
#include "support/gradients.hpp"
#include "support/typed_scalars.hpp"

namespace ml = metalearn;
namespace mt = metalearn::testing;
using TD = ml::Tensor<double>;
using Args = std::vector<TD>;

namespace {

// The same gates written with separate ops (slices, sums, sigmoid, tanh, products).
template <class T>
ml::Tensor<T> gates_by_ops(const ml::Tensor<T>& gi, const ml::Tensor<T>& gh,
                           const ml::Tensor<T>& h) {
  const ml::Index hs = h.shape()[1];
  const auto r = ml::sigmoid(ml::add(ml::slice(gi, 1, 0, hs), ml::slice(gh, 1, 0, hs)));
  const auto z = ml::sigmoid(ml::add(ml::slice(gi, 1, hs, 2 * hs), ml::slice(gh, 1, hs, 2 * hs)));
  const auto n = ml::tanh(
      ml::add(ml::slice(gi, 1, 2 * hs, 3 * hs), ml::mul(r, ml::slice(gh, 1, 2 * hs, 3 * hs))));
  return ml::add(n, ml::mul(z, ml::sub(h, n)));
}

template <class T>
bool same_bits(const ml::Tensor<T>& a, const ml::Tensor<T>& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * sizeof(T)) == 0;
}

// Distance in units in the last place between two finite floats of the same sign.
std::int64_t ulps(float a, float b) {
  std::int32_t ia = 0, ib = 0;
  std::memcpy(&ia, &a, sizeof a);
  std::memcpy(&ib, &b, sizeof b);
  const auto key = [](std::int32_t i) {
    return i < 0 ? -static_cast<std::int64_t>(i & 0x7fffffff) : static_cast<std::int64_t>(i);
  };
  return std::llabs(key(ia) - key(ib));
}

// Every 4099th float bit pattern, finite ones only (about a million values of every
// magnitude and both signs), plus the edges of the kernels' ranges.
std::vector<float> float_sweep() {
  std::vector<float> xs;
  for (std::uint64_t b = 0; b <= 0xffffffffULL; b += 4099) {
    const auto bits = static_cast<std::uint32_t>(b);
    float f = 0.0f;
    std::memcpy(&f, &bits, sizeof f);
    if (std::isfinite(f)) xs.push_back(f);
  }
  for (float f : {0.0f, -0.0f, 20.0f, -20.0f, 87.0f, -87.0f, 88.8f, -103.9f, -104.5f, 1e-30f,
                  -1e-30f, 0.34657f, 0.34658f, -0.34657f, 0.5f, -0.5f})
    xs.push_back(f);
  return xs;
}

template <class T>
class GruGates : public ::testing::Test {};
TYPED_TEST_SUITE(GruGates, mt::RealTypes, mt::RealTypeNames);

}  // namespace

// The one-pass op gives the bits of the same formulas written as separate ops (a hidden
// size that is not a multiple of any vector width exercises the row tails).
TYPED_TEST(GruGates, EqualsTheFormulasAsSeparateOps) {
  using T = TypeParam;
  ml::Generator gen(3);
  for (ml::Index hs : {1, 5, 16, 37}) {
    const auto gi = ml::uniform<T>(ml::Shape{4, 3 * hs}, gen, T(-4), T(4));
    const auto gh = ml::uniform<T>(ml::Shape{4, 3 * hs}, gen, T(-4), T(4));
    const auto h = ml::uniform<T>(ml::Shape{4, hs}, gen, T(-1), T(1));
    EXPECT_TRUE(same_bits(ml::gru_gates(gi, gh, h), gates_by_ops(gi, gh, h))) << "H = " << hs;
  }
}

// First-order gradients from the kernel equal those of the backward written in ops
// (taken when the backward is recorded), bit for bit, and agree with autograd through
// the separate ops to rounding.
TYPED_TEST(GruGates, KernelBackwardEqualsTheRecordedBackward) {
  using T = TypeParam;
  ml::Generator gen(5);
  const ml::Index hs = 13;
  auto gi = ml::uniform<T>(ml::Shape{3, 3 * hs}, gen, T(-3), T(3)).requires_grad(true);
  auto gh = ml::uniform<T>(ml::Shape{3, 3 * hs}, gen, T(-3), T(3)).requires_grad(true);
  auto h = ml::uniform<T>(ml::Shape{3, hs}, gen, T(-1), T(1)).requires_grad(true);
  const auto a = ml::uniform<T>(ml::Shape{3, hs}, gen, T(-1), T(1));
  using V = std::vector<ml::Tensor<T>>;
  const V inputs{gi, gh, h};
  const auto fast = ml::autograd::grad(V{ml::gru_gates(gi, gh, h)}, inputs, {}, V{a});
  const auto recorded =
      ml::autograd::grad(V{ml::gru_gates(gi, gh, h)}, inputs, {.create_graph = true}, V{a});
  const auto by_ops = ml::autograd::grad(V{gates_by_ops(gi, gh, h)}, inputs, {}, V{a});
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-13;
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(same_bits(fast[i], recorded[i])) << "input " << i;
    const auto f = fast[i].to_vector();
    const auto o = by_ops[i].to_vector();
    for (std::size_t k = 0; k < f.size(); ++k) {
      EXPECT_NEAR(static_cast<double>(f[k]), static_cast<double>(o[k]), tol)
          << "input " << i << " element " << k;
    }
  }
}

// Only the gradients asked for are computed; the others stay undefined.
TEST(GruGatesOp, GradientOfOneInput) {
  ml::Generator gen(9);
  auto gi = ml::uniform<double>(ml::Shape{2, 6}, gen, -1, 1).requires_grad(true);
  const auto gh = ml::uniform<double>(ml::Shape{2, 6}, gen, -1, 1);
  const auto h = ml::uniform<double>(ml::Shape{2, 2}, gen, -1, 1);
  const auto g = ml::autograd::grad({ml::sum(ml::gru_gates(gi, gh, h))}, {gi});
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].shape(), gi.shape());
}

TEST(GruGatesOp, GradcheckAndGradgradcheck) {
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::gru_gates(v[0], v[1], v[2]); },
                                  {ml::Shape{2, 9}, ml::Shape{2, 9}, ml::Shape{2, 3}},
                                  {.lo = -2.0, .hi = 2.0}));
  // A hidden state that shares a product's input, as in a recurrent step.
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) {
        const TD gh = ml::matmul(v[1], v[2]);
        return ml::gru_gates(v[0], gh, v[1]);
      },
      {ml::Shape{2, 6}, ml::Shape{2, 2}, ml::Shape{2, 6}}, {.lo = -1.5, .hi = 1.5, .seed = 4}));
}

TEST(GruGatesOp, ShapeErrorsNameTheOp) {
  const auto gi = ml::zeros<double>(ml::Shape{2, 6});
  const auto h = ml::zeros<double>(ml::Shape{2, 2});
  EXPECT_THROW(ml::gru_gates(gi, ml::zeros<double>(ml::Shape{2, 5}), h), ml::ShapeError);
  EXPECT_THROW(ml::gru_gates(gi, gi, ml::zeros<double>(ml::Shape{3, 2})), ml::ShapeError);
  try {
    (void)ml::gru_gates(gi, gi, ml::zeros<double>(ml::Shape{2, 3}));
    FAIL() << "expected ShapeError";
  } catch (const ml::ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("gru_gates"), std::string::npos) << e.what();
  }
}

// float sigmoid and tanh: within 2 ulp of the correctly rounded values over every
// magnitude (where sigmoid's result is subnormal, within 1e-45 absolute), and the
// edges exact.
TEST(FloatActivations, WithinTwoUlpOfTheExactValues) {
  const std::vector<float> xs = float_sweep();
  const auto x = ml::from_vector<float>(xs, ml::Shape{static_cast<ml::Index>(xs.size())});
  const auto s = ml::sigmoid(x).to_vector();
  const auto t = ml::tanh(x).to_vector();
  std::int64_t worst_s = 0, worst_t = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double v = xs[i];
    const auto es =
        static_cast<float>(v >= 0 ? 1.0 / (1.0 + std::exp(-v)) : std::exp(v) / (1.0 + std::exp(v)));
    const auto et = static_cast<float>(std::tanh(v));
    const bool subnormal = es < std::numeric_limits<float>::min();
    const std::int64_t us = subnormal && std::fabs(s[i] - es) <= 1e-45f ? 0 : ulps(s[i], es);
    worst_s = std::max(worst_s, us);
    worst_t = std::max(worst_t, ulps(t[i], et));
    ASSERT_LE(us, 2) << "sigmoid(" << xs[i] << ") = " << s[i] << ", exact " << es;
    ASSERT_LE(ulps(t[i], et), 2) << "tanh(" << xs[i] << ") = " << t[i] << ", exact " << et;
  }
  EXPECT_GT(xs.size(), 1000000u);
  const auto edges = ml::from_vector<float>(
      {0.0f, -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
       std::numeric_limits<float>::quiet_NaN()},
      ml::Shape{5});
  const auto se = ml::sigmoid(edges).to_vector();
  const auto te = ml::tanh(edges).to_vector();
  EXPECT_EQ(se[0], 0.5f);
  EXPECT_EQ(se[1], 0.5f);
  EXPECT_EQ(se[2], 1.0f);
  EXPECT_EQ(se[3], 0.0f);
  EXPECT_TRUE(std::isnan(se[4]));
  EXPECT_EQ(te[0], 0.0f);
  EXPECT_TRUE(std::signbit(te[1]));
  EXPECT_EQ(te[2], 1.0f);
  EXPECT_EQ(te[3], -1.0f);
  EXPECT_TRUE(std::isnan(te[4]));
}

// The kernels use IEEE basic operations only, so their bits are the same on every
// instruction set and machine: a hash of the sweep's results, pinned. CI reruns this
// suite under every target the CPU has (METALEARN_SIMD), and the ARM64 build under
// qemu, so a target that rounds differently fails here.
TEST(FloatActivations, SameBitsOnEveryTarget) {
  const std::vector<float> xs = float_sweep();
  const auto x = ml::from_vector<float>(xs, ml::Shape{static_cast<ml::Index>(xs.size())});
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const auto& values : {ml::sigmoid(x).to_vector(), ml::tanh(x).to_vector()}) {
    for (float v : values) {
      std::uint32_t bits = 0;
      std::memcpy(&bits, &v, sizeof v);
      for (int b = 0; b < 4; ++b) hash = (hash ^ ((bits >> (8 * b)) & 0xffu)) * 0x100000001b3ULL;
    }
  }
  EXPECT_EQ(hash, 0x5158a0c58272ec99ULL)
      << "on " << ml::simd_target() << ": 0x" << std::hex << hash;
}
