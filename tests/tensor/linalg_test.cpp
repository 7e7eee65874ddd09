// Matrix products: values over float and double, gradients in double.

#include <gtest/gtest.h>

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

template <class T>
class Linalg : public ::testing::Test {
 protected:
  ml::Tensor<T> a = mt::make<T>({2, 3}, {1, 2, 3, 4, 5, 6});
  ml::Tensor<T> b = mt::make<T>({3, 2}, {7, 8, 9, 10, 11, 12});
  // a @ b = [[58, 64], [139, 154]]
};
TYPED_TEST_SUITE(Linalg, mt::RealTypes, mt::RealTypeNames);

TYPED_TEST(Linalg, Matmul2D) {
  EXPECT_TRUE(mt::values_near(ml::matmul(this->a, this->b), {2, 2}, {58, 64, 139, 154}));
  EXPECT_TRUE(
      mt::values_near(ml::matmul(this->b, this->a), {3, 3}, {39, 54, 69, 49, 68, 87, 59, 82, 105}));
}

TYPED_TEST(Linalg, MmTransposes) {
  auto at = ml::transpose(this->a);  // [3, 2]
  auto bt = ml::transpose(this->b);  // [2, 3]
  EXPECT_TRUE(mt::values_near(ml::mm(at, this->b, true, false), {2, 2}, {58, 64, 139, 154}));
  EXPECT_TRUE(mt::values_near(ml::mm(this->a, bt, false, true), {2, 2}, {58, 64, 139, 154}));
  EXPECT_TRUE(mt::values_near(ml::mm(at, bt, true, true), {2, 2}, {58, 64, 139, 154}));
  // a @ a^T and a^T @ a.
  EXPECT_TRUE(mt::values_near(ml::mm(this->a, this->a, false, true), {2, 2}, {14, 32, 32, 77}));
  EXPECT_TRUE(mt::values_near(ml::mm(this->a, this->a, true, false), {3, 3},
                              {17, 22, 27, 22, 29, 36, 27, 36, 45}));
}

TYPED_TEST(Linalg, Batched) {
  using T = TypeParam;
  auto a3 = ml::stack<T>({this->a, ml::mul_scalar(this->a, T(2))}, 0);  // [2, 2, 3]
  auto b3 = ml::stack<T>({this->b, ml::neg(this->b)}, 0);               // [2, 3, 2]
  EXPECT_TRUE(
      mt::values_near(ml::bmm(a3, b3), {2, 2, 2}, {58, 64, 139, 154, -116, -128, -278, -308}));
  EXPECT_TRUE(
      mt::values_near(ml::matmul(a3, b3), {2, 2, 2}, {58, 64, 139, 154, -116, -128, -278, -308}));
  // 3-D @ shared 2-D and shared 2-D @ 3-D.
  EXPECT_TRUE(
      mt::values_near(ml::matmul(a3, this->b), {2, 2, 2}, {58, 64, 139, 154, 116, 128, 278, 308}));
  EXPECT_TRUE(mt::values_near(ml::mm(this->a, b3, false, false), {2, 2, 2},
                              {58, 64, 139, 154, -58, -64, -139, -154}));
  EXPECT_TRUE(mt::values_near(ml::mm(a3, this->b, false, false), {2, 2, 2},
                              {58, 64, 139, 154, 116, 128, 278, 308}));
}

TYPED_TEST(Linalg, MatmulNDBy2D) {
  using T = TypeParam;
  auto x = ml::reshape(ml::arange<T>(T(0), T(12)), std::vector<ml::Index>{2, 2, 3});
  auto w = mt::make<T>({3, 1}, {1, 1, 1});
  EXPECT_TRUE(mt::values_near(ml::matmul(x, w), {2, 2, 1}, {3, 12, 21, 30}));
}

TYPED_TEST(Linalg, GradientValues) {
  auto a = this->a.detach().clone().requires_grad(true);
  auto b = this->b.detach().clone().requires_grad(true);
  auto g = ml::autograd::grad({ml::sum(ml::matmul(a, b))}, {a, b});
  // d/da sum(a b) = 1 b^T: row sums of b; d/db = a^T 1: column sums of a.
  EXPECT_TRUE(mt::values_near(g[0], {2, 3}, {15, 19, 23, 15, 19, 23}));
  EXPECT_TRUE(mt::values_near(g[1], {3, 2}, {5, 5, 7, 7, 9, 9}));
}

TYPED_TEST(Linalg, ShapeErrorsNameOpAndShapes) {
  using T = TypeParam;
  try {
    (void)ml::matmul(ml::zeros<T>({2, 3}), ml::zeros<T>({4, 5}));
    FAIL() << "nothing thrown";
  } catch (const ml::ShapeError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("matmul", 0), 0u) << msg;
    EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4, 5]"), std::string::npos) << msg;
  }
  EXPECT_THROW(ml::bmm(ml::zeros<T>({2, 2, 3}), ml::zeros<T>({3, 3, 2})), ml::ShapeError);
  EXPECT_THROW(ml::bmm(ml::zeros<T>({2, 3}), ml::zeros<T>({3, 2})), ml::ShapeError);
  EXPECT_THROW(ml::matmul(ml::zeros<T>({3}), ml::zeros<T>({3, 2})), ml::ShapeError);
}

// ---- gradient checks (double) --------------------------------------------------

TEST(LinalgGradcheck, Matmul2D) {
  EXPECT_TRUE(
      mt::check_gradients([](const Args& v) { return ml::matmul(v[0], v[1]); }, {{2, 3}, {3, 4}}));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::matmul(v[0], v[0]); }, {{3, 3}}));
}

TEST(LinalgGradcheck, MmAllTransposes) {
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "ta " << ta << " tb " << tb);
      const ml::Shape sa = ta ? ml::Shape{3, 2} : ml::Shape{2, 3};
      const ml::Shape sb = tb ? ml::Shape{4, 3} : ml::Shape{3, 4};
      EXPECT_TRUE(mt::check_gradients(
          [ta, tb](const Args& v) { return ml::mm(v[0], v[1], ta, tb); }, {sa, sb}));
      // Batched and shared variants.
      const ml::Shape ba{2, sa[0], sa[1]};
      const ml::Shape bb{2, sb[0], sb[1]};
      EXPECT_TRUE(mt::check_gradients(
          [ta, tb](const Args& v) { return ml::mm(v[0], v[1], ta, tb); }, {ba, bb}));
      EXPECT_TRUE(mt::check_gradients(
          [ta, tb](const Args& v) { return ml::mm(v[0], v[1], ta, tb); }, {sa, bb}));
      EXPECT_TRUE(mt::check_gradients(
          [ta, tb](const Args& v) { return ml::mm(v[0], v[1], ta, tb); }, {ba, sb}));
    }
  }
}

TEST(LinalgGradcheck, BatchedMatmul) {
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::bmm(v[0], v[1]); },
                                  {{2, 2, 3}, {2, 3, 2}}));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::matmul(v[0], v[1]); },
                                  {{2, 2, 3}, {3, 2}}));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::matmul(v[0], v[1]); },
                                  {{2, 2, 2, 3}, {3, 2}}));
}
