// Elementwise ops: values over float and double, gradients in double.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "metalearn/autograd.hpp"
#include "metalearn/tensor.hpp"
#include "support/gradients.hpp"
#include "support/intra_op.hpp"
#include "support/tensor_assertions.hpp"
#include "support/typed_scalars.hpp"

namespace ml = metalearn;
namespace mt = metalearn::testing;
using TD = ml::Tensor<double>;
using Args = std::vector<TD>;

template <class T>
class Elementwise : public ::testing::Test {
 protected:
  // a = [[1..4],[5..8],[9..12]], row = [10, 20, 30, 40], col = [[1],[2],[3]].
  ml::Tensor<T> a = mt::make<T>({3, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  ml::Tensor<T> row = mt::make<T>({4}, {10, 20, 30, 40});
  ml::Tensor<T> col = mt::make<T>({3, 1}, {1, 2, 3});
  ml::Tensor<T> row1 = mt::make<T>({1, 4}, {1, 2, 3, 4});
  ml::Tensor<T> s = ml::scalar<T>(T(2));
  ml::Tensor<T> x = mt::make<T>({3}, {0.5, -1.5, 2.0});
  ml::Tensor<T> pos = mt::make<T>({3}, {0.25, 1.0, 4.0});
};
TYPED_TEST_SUITE(Elementwise, mt::RealTypes, mt::RealTypeNames);

TYPED_TEST(Elementwise, AddBroadcasting) {
  EXPECT_TRUE(mt::values_near(ml::add(this->a, this->row), {3, 4},
                              {11, 22, 33, 44, 15, 26, 37, 48, 19, 30, 41, 52}));
  EXPECT_TRUE(mt::values_near(ml::add(this->row, this->a), {3, 4},
                              {11, 22, 33, 44, 15, 26, 37, 48, 19, 30, 41, 52}));
  EXPECT_TRUE(mt::values_near(ml::add(this->col, this->row1), {3, 4},
                              {2, 3, 4, 5, 3, 4, 5, 6, 4, 5, 6, 7}));
  EXPECT_TRUE(mt::values_near(ml::add(this->col, this->s), {3, 1}, {3, 4, 5}));
  EXPECT_TRUE(mt::values_near(this->row + this->row, {4}, {20, 40, 60, 80}));
}

TYPED_TEST(Elementwise, SubBroadcasting) {
  EXPECT_TRUE(mt::values_near(ml::sub(this->a, this->row), {3, 4},
                              {-9, -18, -27, -36, -5, -14, -23, -32, -1, -10, -19, -28}));
  EXPECT_TRUE(mt::values_near(ml::sub(this->col, this->row1), {3, 4},
                              {0, -1, -2, -3, 1, 0, -1, -2, 2, 1, 0, -1}));
  EXPECT_TRUE(mt::values_near(ml::sub(this->s, this->col), {3, 1}, {1, 0, -1}));
  EXPECT_TRUE(mt::values_near(this->row - this->row, {4}, {0, 0, 0, 0}));
}

TYPED_TEST(Elementwise, MulBroadcasting) {
  EXPECT_TRUE(mt::values_near(ml::mul(this->a, this->row), {3, 4},
                              {10, 40, 90, 160, 50, 120, 210, 320, 90, 200, 330, 480}));
  EXPECT_TRUE(mt::values_near(ml::mul(this->col, this->row1), {3, 4},
                              {1, 2, 3, 4, 2, 4, 6, 8, 3, 6, 9, 12}));
  EXPECT_TRUE(mt::values_near(ml::mul(this->s, this->row), {4}, {20, 40, 60, 80}));
  EXPECT_TRUE(mt::values_near(this->col * this->col, {3, 1}, {1, 4, 9}));
}

TYPED_TEST(Elementwise, DivBroadcasting) {
  EXPECT_TRUE(mt::values_near(ml::div(this->row, this->s), {4}, {5, 10, 15, 20}));
  EXPECT_TRUE(mt::values_near(ml::div(this->col, this->row1), {3, 4},
                              {1, 0.5, 1.0 / 3, 0.25, 2, 1, 2.0 / 3, 0.5, 3, 1.5, 1, 0.75}));
  EXPECT_TRUE(
      mt::values_near(ml::div(this->a, this->row), {3, 4},
                      {0.1, 0.1, 0.1, 0.1, 0.5, 0.3, 7.0 / 30, 0.2, 0.9, 0.5, 11.0 / 30, 0.3}));
  EXPECT_TRUE(mt::values_near(this->s / this->col, {3, 1}, {2, 1, 2.0 / 3}));
}

TYPED_TEST(Elementwise, HigherRankBroadcasting) {
  using T = TypeParam;
  auto p = mt::make<T>({2, 1, 3}, {1, 2, 3, 4, 5, 6});
  auto q = mt::make<T>({2, 1}, {10, 20});
  EXPECT_TRUE(
      mt::values_near(ml::add(p, q), {2, 2, 3}, {11, 12, 13, 21, 22, 23, 14, 15, 16, 24, 25, 26}));
  EXPECT_TRUE(mt::values_near(ml::mul(q, p), {2, 2, 3},
                              {10, 20, 30, 20, 40, 60, 40, 50, 60, 80, 100, 120}));
}

TYPED_TEST(Elementwise, ScalarOps) {
  using T = TypeParam;
  EXPECT_TRUE(mt::values_near(ml::add_scalar(this->x, T(1)), {3}, {1.5, -0.5, 3}));
  EXPECT_TRUE(mt::values_near(ml::mul_scalar(this->x, T(-2)), {3}, {-1, 3, -4}));
  EXPECT_TRUE(mt::values_near(ml::neg(this->x), {3}, {-0.5, 1.5, -2}));
  EXPECT_TRUE(mt::values_near(ml::reciprocal(this->x), {3}, {2, -2.0 / 3, 0.5}));
  EXPECT_TRUE(mt::values_near(this->x + T(1), {3}, {1.5, -0.5, 3}));
  EXPECT_TRUE(mt::values_near(T(1) + this->x, {3}, {1.5, -0.5, 3}));
  EXPECT_TRUE(mt::values_near(this->x - T(1), {3}, {-0.5, -2.5, 1}));
  EXPECT_TRUE(mt::values_near(T(1) - this->x, {3}, {0.5, 2.5, -1}));
  EXPECT_TRUE(mt::values_near(this->x * T(3), {3}, {1.5, -4.5, 6}));
  EXPECT_TRUE(mt::values_near(T(3) * this->x, {3}, {1.5, -4.5, 6}));
  EXPECT_TRUE(mt::values_near(this->x / T(2), {3}, {0.25, -0.75, 1}));
  EXPECT_TRUE(mt::values_near(T(3) / this->x, {3}, {6, -2, 1.5}));
  EXPECT_TRUE(mt::values_near(-this->x, {3}, {-0.5, 1.5, -2}));
}

TYPED_TEST(Elementwise, PowersAndRoots) {
  using T = TypeParam;
  EXPECT_TRUE(mt::values_near(ml::pow(this->x, T(2)), {3}, {0.25, 2.25, 4}));
  EXPECT_TRUE(mt::values_near(ml::pow(this->x, T(3)), {3}, {0.125, -3.375, 8}));
  EXPECT_TRUE(mt::values_near(ml::pow(this->pos, T(1.5)), {3}, {0.125, 1, 8}));
  EXPECT_TRUE(mt::values_near(ml::pow(this->pos, T(0)), {3}, {1, 1, 1}));
  EXPECT_TRUE(mt::values_near(ml::square(this->x), {3}, {0.25, 2.25, 4}));
  EXPECT_TRUE(mt::values_near(ml::sqrt(this->pos), {3}, {0.5, 1, 2}));
}

TYPED_TEST(Elementwise, Transcendentals) {
  EXPECT_TRUE(mt::values_near(ml::exp(this->x), {3},
                              {1.6487212707001282, 0.22313016014842982, 7.38905609893065}));
  EXPECT_TRUE(
      mt::values_near(ml::log(this->pos), {3}, {-1.3862943611198906, 0.0, 1.3862943611198906}));
  EXPECT_TRUE(mt::values_near(ml::sigmoid(this->x), {3},
                              {0.6224593312018546, 0.18242552380635635, 0.8807970779778823}));
  EXPECT_TRUE(mt::values_near(ml::tanh(this->x), {3},
                              {0.46211715726000974, -0.9051482536448664, 0.9640275800758169}));
  EXPECT_TRUE(mt::values_near(ml::softplus(this->x), {3},
                              {0.9740769841801067, 0.2014132779827524, 2.1269280110429727}));
}

TYPED_TEST(Elementwise, StableAtExtremes) {
  using T = TypeParam;
  auto big = mt::make<T>({2}, {-1000, 1000});
  EXPECT_TRUE(mt::values_near(ml::sigmoid(big), {2}, {0, 1}));
  EXPECT_TRUE(mt::values_near(ml::softplus(big), {2}, {0, 1000}));
}

TYPED_TEST(Elementwise, PiecewiseLinear) {
  using T = TypeParam;
  EXPECT_TRUE(mt::values_near(ml::abs(this->x), {3}, {0.5, 1.5, 2}));
  EXPECT_TRUE(mt::values_near(ml::relu(this->x), {3}, {0.5, 0, 2}));
  EXPECT_TRUE(mt::values_near(ml::leaky_relu(this->x, T(0.1)), {3}, {0.5, -0.15, 2}));
  EXPECT_TRUE(mt::values_near(ml::leaky_relu(this->x), {3}, {0.5, -0.015, 2}));
  EXPECT_TRUE(mt::values_near(ml::clamp(this->x, T(-1), T(1)), {3}, {0.5, -1, 1}));
  EXPECT_THROW(ml::clamp(this->x, T(1), T(-1)), ml::ValueError);
}

TYPED_TEST(Elementwise, BroadcastGradientsAreSummed) {
  using T = TypeParam;
  auto a = this->a.detach().clone().requires_grad(true);
  auto r = this->row.detach().clone().requires_grad(true);
  ml::sum(ml::mul(a, r)).backward();
  // d/dr sum(a * r) = column sums of a; d/da = r broadcast.
  EXPECT_TRUE(mt::values_near(r.grad(), {4}, {15, 18, 21, 24}));
  EXPECT_TRUE(mt::values_near(a.grad(), {3, 4}, {10, 20, 30, 40, 10, 20, 30, 40, 10, 20, 30, 40}));
  auto c = this->col.detach().clone().requires_grad(true);
  auto q = this->row1.detach().clone().requires_grad(true);
  auto sc = ml::scalar<T>(T(2)).requires_grad(true);
  ml::sum(ml::div(ml::mul(c, q), sc)).backward();
  EXPECT_TRUE(mt::values_near(c.grad(), {3, 1}, {5, 5, 5}));
  EXPECT_TRUE(mt::values_near(q.grad(), {1, 4}, {3, 3, 3, 3}));
  // d/ds sum(c q / s) = -sum(c q) / s^2 = -60 / 4.
  EXPECT_TRUE(mt::values_near(sc.grad(), {}, {-15}));
}

TYPED_TEST(Elementwise, UnaryGradientValues) {
  using T = TypeParam;
  auto x = this->x.detach().clone().requires_grad(true);
  auto g = ml::autograd::grad({ml::sum(ml::tanh(x))}, {x})[0];
  const std::vector<double> want{1 - 0.46211715726000974 * 0.46211715726000974,
                                 1 - 0.9051482536448664 * 0.9051482536448664,
                                 1 - 0.9640275800758169 * 0.9640275800758169};
  EXPECT_TRUE(mt::values_near(g, {3}, want));
  auto r = ml::autograd::grad({ml::sum(ml::relu(x))}, {x})[0];
  EXPECT_TRUE(mt::values_near(r, {3}, {1, 0, 1}));
  auto l = ml::autograd::grad({ml::sum(ml::leaky_relu(x, T(0.2)))}, {x})[0];
  EXPECT_TRUE(mt::values_near(l, {3}, {1, 0.2, 1}));
  auto c = ml::autograd::grad({ml::sum(ml::clamp(x, T(-1), T(1)))}, {x})[0];
  EXPECT_TRUE(mt::values_near(c, {3}, {1, 0, 0}));
  auto a = ml::autograd::grad({ml::sum(ml::abs(x))}, {x})[0];
  EXPECT_TRUE(mt::values_near(a, {3}, {1, -1, 1}));
}

// ---- gradient checks (double) --------------------------------------------------

TEST(ElementwiseGradcheck, AddSubMulDivBroadcasting) {
  const std::vector<std::vector<ml::Shape>> cases{
      {{3, 4}, {4}}, {{4}, {3, 4}},    {{3, 1}, {1, 4}},   {{3, 4}, {}},
      {{}, {2, 3}},  {{2, 3}, {2, 3}}, {{2, 1, 3}, {4, 1}}};
  for (const auto& shapes : cases) {
    SCOPED_TRACE(::testing::Message() << "shapes " << shapes[0] << " and " << shapes[1]);
    EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::add(v[0], v[1]); }, shapes));
    EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::sub(v[0], v[1]); }, shapes));
    EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::mul(v[0], v[1]); }, shapes));
    EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::div(v[0], v[1]); }, shapes,
                                    {.lo = 0.5, .hi = 1.5}));
  }
}

TEST(ElementwiseGradcheck, SameTensorOnBothSides) {
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::mul(v[0], v[0]); }, {{3}}));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::div(v[0], v[0]); }, {{3}},
                                  {.lo = 0.5, .hi = 2.0}));
}

TEST(ElementwiseGradcheck, ScalarOps) {
  EXPECT_TRUE(
      mt::check_gradients([](const Args& v) { return ml::add_scalar(v[0], 2.5); }, {{2, 3}}));
  EXPECT_TRUE(
      mt::check_gradients([](const Args& v) { return ml::mul_scalar(v[0], -1.5); }, {{2, 3}}));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::neg(v[0]); }, {{2, 3}}));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return 2.0 / v[0] - v[0] * 3.0 + 1.0; },
                                  {{2, 3}}, {.lo = 0.5, .hi = 2.0}));
}

TEST(ElementwiseGradcheck, ReciprocalPowSquareSqrt) {
  const mt::GradientSpec positive{.lo = 0.5, .hi = 2.0};
  EXPECT_TRUE(
      mt::check_gradients([](const Args& v) { return ml::reciprocal(v[0]); }, {{2, 3}}, positive));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::pow(v[0], 3.0); }, {{2, 3}}));
  EXPECT_TRUE(
      mt::check_gradients([](const Args& v) { return ml::pow(v[0], 2.5); }, {{2, 3}}, positive));
  EXPECT_TRUE(
      mt::check_gradients([](const Args& v) { return ml::pow(v[0], -1.5); }, {{2, 3}}, positive));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::pow(v[0], 1.0); }, {{2, 3}}));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::square(v[0]); }, {{2, 3}}));
  EXPECT_TRUE(
      mt::check_gradients([](const Args& v) { return ml::sqrt(v[0]); }, {{2, 3}}, positive));
}

TEST(ElementwiseGradcheck, ExpLog) {
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::exp(v[0]); }, {{2, 3}}));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::log(v[0]); }, {{2, 3}},
                                  {.lo = 0.5, .hi = 2.0}));
}

TEST(ElementwiseGradcheck, Activations) {
  const mt::GradientSpec wide{.lo = -2.0, .hi = 2.0};
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::sigmoid(v[0]); }, {{2, 3}}, wide));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::tanh(v[0]); }, {{2, 3}}, wide));
  EXPECT_TRUE(
      mt::check_gradients([](const Args& v) { return ml::softplus(v[0]); }, {{2, 3}}, wide));
}

TEST(ElementwiseGradcheck, Kinked) {
  // Inputs away from the kinks: |x| in [0.1, 1], with both signs.
  const TD x = mt::make<double>({2, 3}, {0.3, -0.7, 0.9, -0.15, 0.55, -0.95});
  EXPECT_TRUE(mt::check_gradients_at([](const Args& v) { return ml::abs(v[0]); }, {x}));
  EXPECT_TRUE(mt::check_gradients_at([](const Args& v) { return ml::relu(v[0]); }, {x}));
  EXPECT_TRUE(mt::check_gradients_at([](const Args& v) { return ml::leaky_relu(v[0], 0.2); }, {x}));
  EXPECT_TRUE(
      mt::check_gradients_at([](const Args& v) { return ml::clamp(v[0], -0.5, 0.6); }, {x}));
  // Curvature through a kinked op (products with smooth ops).
  EXPECT_TRUE(mt::check_gradients_at(
      [](const Args& v) { return ml::mul(ml::relu(v[0]), ml::abs(v[0])); }, {x}));
  // relu's backward as an op of the gradient it masks, first and second order (the
  // square makes the second derivative non-zero).
  const std::shared_ptr<std::uint8_t[]> bytes(new std::uint8_t[6]{1, 0, 1, 0, 0, 1});
  const ml::detail::PositiveMask mask{bytes, 6};
  EXPECT_TRUE(mt::check_gradients_at(
      [mask](const Args& v) { return ml::detail::mask_positive(ml::square(v[0]), mask); },
      {mt::make<double>({2, 3}, {0.4, -1.2, 0.8, 1.5, -0.6, 0.25})}));
}

TEST(Elementwise, ReluBackwardMasksByTheInputsSign) {
  const TD x = mt::make<double>({4}, {-1.0, 0.0, 2.0, 1e-300});
  const TD g = mt::make<double>({4}, {5.0, 6.0, -7.0, 8.0});
  const TD xr = x.clone().requires_grad(true);
  const TD y = ml::relu(xr);
  EXPECT_EQ(y.to_vector(), (std::vector<double>{0.0, 0.0, 2.0, 1e-300}));
  // First order, and the gradient of the recorded backward with respect to g.
  const TD gr = g.clone().requires_grad(true);
  const TD gx = ml::autograd::grad({ml::sum(ml::mul(y, gr))}, {xr},
                                   ml::autograd::GradOptions{.create_graph = true})[0];
  EXPECT_EQ(gx.to_vector(), (std::vector<double>{0.0, 0.0, -7.0, 8.0}));
  EXPECT_EQ(ml::autograd::grad({ml::sum(gx)}, {gr})[0].to_vector(),
            (std::vector<double>{0.0, 0.0, 1.0, 1.0}));
  const ml::detail::PositiveMask mask{std::shared_ptr<std::uint8_t[]>(new std::uint8_t[2]{1, 1}),
                                      2};
  EXPECT_THROW((void)ml::detail::mask_positive(g, mask), ml::ShapeError);
}

// Under an IntraOpScope large elementwise maps run in blocks over the pool; every
// element must come out as one thread computes it (sizes not a multiple of a block).
TEST(Elementwise, IntraOpPoolGivesTheBitsOfOneThread) {
  ml::Generator gen(17);
  const auto a = ml::randn<float>({7, 14'289}, gen);  // 100,023 values: several blocks
  const auto b = ml::randn<float>({7, 14'289}, gen);
  const auto s = ml::randn<float>({1}, gen);
  mt::expect_intra_op_pool_bits<float>([&](mt::ValueRecord<float>& record) {
    const auto x = a.clone().requires_grad(true);
    const auto y = ml::sigmoid(ml::mul(ml::relu(ml::add(x, b)), s));
    record(y);
    record(ml::sub(s, ml::exp(x)));
    record(ml::autograd::grad({ml::sum(ml::square(y))}, {x})[0]);
  });
}

// add_to sums gradients into the accumulator's own storage only when nothing else can
// see it: another handle, a view or a recorded graph keeps its values.
TEST(Elementwise, AddToWritesInPlaceOnlyWhenNothingElseSharesTheValues) {
  const TD g = mt::make<double>({2, 2}, {1, 2, 3, 4});
  TD acc;
  ml::add_to(acc, g);  // an undefined accumulator becomes g
  EXPECT_EQ(acc.impl(), g.impl());

  TD sole = mt::make<double>({2, 2}, {10, 20, 30, 40});
  const double* storage = sole.data();
  ml::add_to(sole, g);
  EXPECT_EQ(sole.data(), storage);
  EXPECT_EQ(sole.to_vector(), (std::vector<double>{11, 22, 33, 44}));

  TD shared = mt::make<double>({2, 2}, {10, 20, 30, 40});
  const TD other = shared;
  ml::add_to(shared, g);
  EXPECT_EQ(other.to_vector(), (std::vector<double>{10, 20, 30, 40}));
  EXPECT_EQ(shared.to_vector(), (std::vector<double>{11, 22, 33, 44}));

  TD viewed = mt::make<double>({2, 2}, {10, 20, 30, 40});
  const TD view = ml::reshape(viewed, ml::Shape({4}));
  ml::add_to(viewed, g);
  EXPECT_EQ(view.to_vector(), (std::vector<double>{10, 20, 30, 40}));
  EXPECT_EQ(viewed.to_vector(), (std::vector<double>{11, 22, 33, 44}));

  TD broadcast = mt::make<double>({1, 2}, {10, 20});
  ml::add_to(broadcast, g);
  EXPECT_EQ(broadcast.shape(), ml::Shape({2, 2}));
  EXPECT_EQ(broadcast.to_vector(), (std::vector<double>{11, 22, 13, 24}));

  // A recorded sum stays differentiable.
  const TD x = mt::make<double>({2, 2}, {1, 1, 1, 1}).requires_grad(true);
  TD recorded = ml::mul_scalar(x, 3.0);
  ml::add_to(recorded, g);
  ASSERT_TRUE(recorded.requires_grad());
  EXPECT_EQ(ml::autograd::grad({ml::sum(recorded)}, {x})[0].to_vector(),
            (std::vector<double>{3, 3, 3, 3}));
}
