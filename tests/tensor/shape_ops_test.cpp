// Shape ops and indexing: values over float and double, gradients in double.

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "metalearn/autograd.hpp"
#include "metalearn/tensor.hpp"
#include "support/gradients.hpp"
#include "support/tensor_assertions.hpp"
#include "support/typed_scalars.hpp"

namespace ml = metalearn;
namespace mt = metalearn::testing;
using TD = ml::Tensor<double>;
using Args = std::vector<TD>;
using V = std::vector<ml::Index>;

template <class T>
class ShapeOps : public ::testing::Test {
 protected:
  ml::Tensor<T> a = mt::make<T>({2, 3}, {1, 2, 3, 4, 5, 6});
  ml::Tensor<T> b = ml::reshape(ml::arange<T>(T(0), T(24)), V{2, 3, 4});
  ml::Tensor<T> r = ml::arange<T>(T(0), T(10));
};
TYPED_TEST_SUITE(ShapeOps, mt::RealTypes, mt::RealTypeNames);

TYPED_TEST(ShapeOps, TransposePermute) {
  EXPECT_TRUE(mt::values_near(ml::transpose(this->a), {3, 2}, {1, 4, 2, 5, 3, 6}));
  EXPECT_TRUE(mt::values_near(ml::transpose(this->a, 0, 1), {3, 2}, {1, 4, 2, 5, 3, 6}));
  EXPECT_TRUE(mt::values_near(
      ml::permute(this->b, V{2, 0, 1}), {4, 2, 3},
      {0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23}));
  EXPECT_TRUE(mt::values_near(
      ml::transpose(this->b, 0, 2), {4, 3, 2},
      {0, 12, 4, 16, 8, 20, 1, 13, 5, 17, 9, 21, 2, 14, 6, 18, 10, 22, 3, 15, 7, 19, 11, 23}));
  EXPECT_THROW(ml::permute(this->b, V{0, 0, 1}), ml::ShapeError);
  EXPECT_THROW(ml::permute(this->b, V{0, 1}), ml::ShapeError);
}

TYPED_TEST(ShapeOps, Reshape) {
  auto r = ml::reshape(this->a, V{3, -1});
  EXPECT_TRUE(mt::values_near(r, {3, 2}, {1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(r.data(), this->a.data());  // shares storage
  EXPECT_TRUE(mt::values_near(ml::reshape(this->a, V{-1}), {6}, {1, 2, 3, 4, 5, 6}));
  EXPECT_TRUE(mt::values_near(ml::reshape(this->a, ml::Shape{1, 6}), {1, 6}, {1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(ml::reshape(this->b, V{4, -1, 2}).shape(), (ml::Shape{4, 3, 2}));
  EXPECT_THROW(ml::reshape(this->a, V{-1, -1}), ml::ShapeError);
  EXPECT_THROW(ml::reshape(this->a, V{4, -1}), ml::ShapeError);
}

TYPED_TEST(ShapeOps, FlattenUnsqueezeSqueeze) {
  EXPECT_EQ(ml::flatten(this->b).shape(), (ml::Shape{24}));
  EXPECT_EQ(ml::flatten(this->b, 1).shape(), (ml::Shape{2, 12}));
  EXPECT_EQ(ml::flatten(this->b, 0, 1).shape(), (ml::Shape{6, 4}));
  EXPECT_EQ(ml::flatten(ml::scalar<TypeParam>(TypeParam(1))).shape(), (ml::Shape{1}));
  EXPECT_EQ(ml::unsqueeze(this->a, 0).shape(), (ml::Shape{1, 2, 3}));
  EXPECT_EQ(ml::unsqueeze(this->a, 2).shape(), (ml::Shape{2, 3, 1}));
  EXPECT_EQ(ml::unsqueeze(this->a, -1).shape(), (ml::Shape{2, 3, 1}));
  EXPECT_EQ(ml::unsqueeze(this->a, -3).shape(), (ml::Shape{1, 2, 3}));
  EXPECT_THROW(ml::unsqueeze(this->a, 3), ml::ShapeError);
  auto u = ml::unsqueeze(this->a, 1);
  EXPECT_TRUE(mt::values_near(ml::squeeze(u, 1), {2, 3}, {1, 2, 3, 4, 5, 6}));
  EXPECT_THROW(ml::squeeze(this->a, 0), ml::ShapeError);
}

TYPED_TEST(ShapeOps, Slice) {
  EXPECT_TRUE(mt::values_near(ml::slice(this->r, 0, 1, 8, 3), {3}, {1, 4, 7}));
  EXPECT_TRUE(mt::values_near(ml::slice(this->r, 0, 2, 4), {2}, {2, 3}));
  EXPECT_TRUE(mt::values_near(ml::slice(this->r, 0, -3, 10), {3}, {7, 8, 9}));
  EXPECT_TRUE(mt::values_near(ml::slice(this->r, 0, 0, -8), {2}, {0, 1}));
  EXPECT_TRUE(mt::values_near(ml::slice(this->r, 0, 5, 100, 2), {3}, {5, 7, 9}));
  EXPECT_EQ(ml::slice(this->r, 0, 6, 3).numel(), 0);
  EXPECT_TRUE(mt::values_near(ml::slice(this->a, 1, 0, 3, 2), {2, 2}, {1, 3, 4, 6}));
  EXPECT_TRUE(mt::values_near(ml::slice(this->a, 0, 1, 2), {1, 3}, {4, 5, 6}));
  EXPECT_TRUE(mt::values_near(ml::slice(this->b, 1, 1, 3, 1), {2, 2, 4},
                              {4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23}));
  EXPECT_TRUE(mt::values_near(ml::narrow(this->a, 1, 1, 2), {2, 2}, {2, 3, 5, 6}));
  EXPECT_THROW(ml::slice(this->r, 0, 0, 5, 0), ml::ValueError);
}

TYPED_TEST(ShapeOps, SliceGradientScattersWithStep) {
  auto x = this->r.detach().clone().requires_grad(true);
  auto y = ml::slice(x, 0, 1, 8, 3);
  auto g = ml::autograd::grad({ml::sum(ml::mul(y, y))}, {x})[0];
  EXPECT_TRUE(mt::values_near(g, {10}, {0, 2, 0, 0, 8, 0, 0, 14, 0, 0}));
}

TYPED_TEST(ShapeOps, ConcatStack) {
  using T = TypeParam;
  auto a10 = ml::mul_scalar(this->a, T(10));
  EXPECT_TRUE(mt::values_near(ml::concat<T>({this->a, a10}, 0), {4, 3},
                              {1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60}));
  EXPECT_TRUE(mt::values_near(ml::concat<T>({this->a, a10, this->a}, 1), {2, 9},
                              {1, 2, 3, 10, 20, 30, 1, 2, 3, 4, 5, 6, 40, 50, 60, 4, 5, 6}));
  EXPECT_TRUE(mt::values_near(ml::concat<T>({this->a, ml::slice(this->a, 1, 0, 1)}, -1), {2, 4},
                              {1, 2, 3, 1, 4, 5, 6, 4}));
  EXPECT_TRUE(mt::values_near(ml::stack<T>({this->a, a10}, 0), {2, 2, 3},
                              {1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60}));
  EXPECT_TRUE(mt::values_near(ml::stack<T>({this->a, a10}, 1), {2, 2, 3},
                              {1, 2, 3, 10, 20, 30, 4, 5, 6, 40, 50, 60}));
  EXPECT_TRUE(mt::values_near(ml::stack<T>({this->a, a10}, -1), {2, 3, 2},
                              {1, 10, 2, 20, 3, 30, 4, 40, 5, 50, 6, 60}));
  EXPECT_THROW(ml::stack<T>({this->a, ml::transpose(this->a)}, 0), ml::ShapeError);
  EXPECT_THROW(ml::concat<T>({}, 0), ml::ValueError);
}

TYPED_TEST(ShapeOps, IndexSelectGatherTake) {
  EXPECT_TRUE(
      mt::values_near(ml::index_select(this->a, 1, V{2, 0, 2}), {2, 3}, {3, 1, 3, 6, 4, 6}));
  EXPECT_TRUE(mt::values_near(ml::index_select(this->a, 0, V{1}), {1, 3}, {4, 5, 6}));
  EXPECT_TRUE(mt::values_near(ml::gather(this->a, 1, V{0, 0, 2, 1}, ml::Shape{2, 2}), {2, 2},
                              {1, 1, 6, 5}));
  EXPECT_TRUE(
      mt::values_near(ml::gather(this->a, 0, V{1, 0, 1}, ml::Shape{1, 3}), {1, 3}, {4, 2, 6}));
  auto idx = std::make_shared<const std::vector<ml::Index>>(V{5, 0, 0});
  EXPECT_TRUE(mt::values_near(ml::take(this->a, idx, ml::Shape{3}), {3}, {6, 1, 1}));
  EXPECT_THROW(ml::index_select(this->a, 1, V{3}), ml::ShapeError);
  EXPECT_THROW(ml::gather(this->a, 1, V{0, 3}, ml::Shape{2, 1}), ml::ShapeError);
  EXPECT_THROW(ml::gather(this->a, 1, V{0, 1, 2}, ml::Shape{3, 1}), ml::ShapeError);
}

TYPED_TEST(ShapeOps, RepeatedIndicesAccumulateGradients) {
  auto x = this->a.detach().clone().requires_grad(true);
  auto g = ml::autograd::grad({ml::sum(ml::index_select(x, 1, V{2, 0, 2}))}, {x})[0];
  EXPECT_TRUE(mt::values_near(g, {2, 3}, {1, 0, 2, 1, 0, 2}));
}

TYPED_TEST(ShapeOps, ExpandSumTo) {
  using T = TypeParam;
  auto v = mt::make<T>({3}, {1, 2, 3});
  EXPECT_TRUE(mt::values_near(ml::expand(v, {2, 3}), {2, 3}, {1, 2, 3, 1, 2, 3}));
  auto c = mt::make<T>({2, 1}, {1, 2});
  EXPECT_TRUE(mt::values_near(ml::expand(c, {2, 3}), {2, 3}, {1, 1, 1, 2, 2, 2}));
  EXPECT_TRUE(mt::values_near(ml::expand(ml::scalar<T>(T(4)), {2}), {2}, {4, 4}));
  EXPECT_THROW(ml::expand(v, {2, 4}), ml::ShapeError);
  EXPECT_THROW(ml::expand(ml::zeros<T>({2, 3}), {3}), ml::ShapeError);
  EXPECT_TRUE(mt::values_near(ml::sum_to(this->a, {3}), {3}, {5, 7, 9}));
  EXPECT_TRUE(mt::values_near(ml::sum_to(this->a, {1, 3}), {1, 3}, {5, 7, 9}));
  EXPECT_TRUE(mt::values_near(ml::sum_to(this->a, {2, 1}), {2, 1}, {6, 15}));
  EXPECT_TRUE(mt::values_near(ml::sum_to(this->a, {}), {}, {21}));
  EXPECT_TRUE(mt::values_near(ml::sum_to(this->b, {3, 1}), {3, 1}, {60, 92, 124}));
  EXPECT_THROW(ml::sum_to(this->a, {4}), ml::ShapeError);
}

// ---- gradient checks (double) --------------------------------------------------

TEST(ShapeOpsGradcheck, TransposePermute) {
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::transpose(v[0]); }, {{2, 3}}));
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) {
        return ml::permute(v[0], V{1, 2, 0});
      },
      {{2, 3, 4}}));
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) { return ml::mul(ml::transpose(v[0], 0, 2), ml::transpose(v[0], 0, 2)); },
      {{2, 3, 2}}));
}

// take and its adjoint put over 32-bit indices (max_pool2d's), repeated entries
// included: values, first and second order.
TEST(ShapeOpsGradcheck, TakeWithNarrowIndices) {
  using Narrow = std::vector<std::uint32_t>;
  const auto idx = std::make_shared<const Narrow>(Narrow{5, 0, 0, 3, 5, 1});
  const auto a = mt::make<double>({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_TRUE(mt::values_near(ml::take(a, idx, ml::Shape{2, 3}), {2, 3}, {6, 1, 1, 4, 6, 2}));
  EXPECT_TRUE(mt::check_gradients(
      [idx](const Args& v) {
        return ml::square(ml::take(v[0], idx, ml::Shape{3, 2}));
      },
      {{2, 3}}));
  const auto bad = std::make_shared<const Narrow>(Narrow{6});
  EXPECT_THROW(ml::take(a, bad, ml::Shape{1}), ml::ShapeError);
}

TEST(ShapeOpsGradcheck, ReshapeFlattenSqueeze) {
  const std::vector<ml::Shape> s{{2, 3, 2}};
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) {
        return ml::mul(ml::reshape(v[0], V{-1, 4}), ml::reshape(v[0], V{3, 4}));
      },
      s));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::flatten(v[0], 1); }, s));
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) { return ml::squeeze(ml::unsqueeze(ml::square(v[0]), 1), 1); }, s));
}

TEST(ShapeOpsGradcheck, Slice) {
  const std::vector<ml::Shape> s{{4, 7}};
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::slice(v[0], 1, 1, 7, 2); }, s));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::slice(v[0], 0, -3, 4); }, s));
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) { return ml::square(ml::slice(v[0], 1, 0, 7, 3)); }, s));
}

TEST(ShapeOpsGradcheck, ConcatStack) {
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) {
        return ml::concat<double>({v[0], ml::square(v[1])}, 1);
      },
      {{2, 3}, {2, 2}}));
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) {
        return ml::stack<double>({v[0], ml::mul(v[0], v[1]), v[1]}, 1);
      },
      {{2, 3}, {2, 3}}));
  // One part does not require grad.
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) {
        return ml::concat<double>({ml::ones<double>({1, 3}), v[0]}, 0);
      },
      {{2, 3}}));
}

TEST(ShapeOpsGradcheck, IndexSelectGather) {
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) {
        return ml::square(ml::index_select(v[0], 0, V{2, 0, 2}));
      },
      {{3, 2}}));
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) {
        return ml::square(ml::gather(v[0], 1, V{0, 0, 2, 1, 1, 0}, ml::Shape{3, 2}));
      },
      {{3, 3}}));
}

TEST(ShapeOpsGradcheck, ExpandSumTo) {
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) {
        return ml::square(ml::expand(v[0], {2, 3, 4}));
      },
      {{3, 1}}));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::expand(v[0], {2, 3}); }, {{}}));
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) {
        return ml::square(ml::sum_to(v[0], {3, 1}));
      },
      {{2, 3, 4}}));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::sum_to(v[0], {}); }, {{2, 3}}));
}
