// Tensor basics: factories, element access, printing, detach/clone, autograd flags.

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "metalearn/core/eigen.hpp"

#include "metalearn/autograd.hpp"
#include "metalearn/tensor.hpp"
#include "support/tensor_assertions.hpp"
#include "support/typed_scalars.hpp"

namespace ml = metalearn;
namespace mt = metalearn::testing;

template <class T>
class TensorBasics : public ::testing::Test {};
TYPED_TEST_SUITE(TensorBasics, mt::RealTypes, mt::RealTypeNames);

TYPED_TEST(TensorBasics, ZerosOnesFull) {
  using T = TypeParam;
  EXPECT_TRUE(mt::values_near(ml::zeros<T>({2, 2}), {2, 2}, {0, 0, 0, 0}));
  EXPECT_TRUE(mt::values_near(ml::ones<T>({3}), {3}, {1, 1, 1}));
  EXPECT_TRUE(mt::values_near(ml::full<T>({1, 2}, T(2.5)), {1, 2}, {2.5, 2.5}));
  auto s = ml::scalar<T>(T(4));
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.item(), T(4));
  auto e = ml::zeros<T>({0, 3});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_TRUE(mt::values_near(ml::zeros_like(ml::ones<T>({2})), {2}, {0, 0}));
  EXPECT_TRUE(mt::values_near(ml::ones_like(ml::zeros<T>({1})), {1}, {1}));
}

TYPED_TEST(TensorBasics, Arange) {
  using T = TypeParam;
  EXPECT_TRUE(mt::values_near(ml::arange<T>(T(0), T(5)), {5}, {0, 1, 2, 3, 4}));
  EXPECT_TRUE(mt::values_near(ml::arange<T>(T(1), T(2), T(0.25)), {4}, {1, 1.25, 1.5, 1.75}));
  EXPECT_TRUE(mt::values_near(ml::arange<T>(T(3), T(0), T(-1)), {3}, {3, 2, 1}));
  EXPECT_EQ(ml::arange<T>(T(2), T(1)).numel(), 0);
  EXPECT_THROW(ml::arange<T>(T(0), T(1), T(0)), ml::ValueError);
}

TYPED_TEST(TensorBasics, FromVector) {
  using T = TypeParam;
  auto t = ml::from_vector<T>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_TRUE(mt::values_near(t, {2, 3}, {1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(t.at(1, 0), T(4));
  EXPECT_EQ(t.at(0, 2), T(3));
  EXPECT_EQ(t.size(0), 2);
  EXPECT_EQ(t.size(-1), 3);
  auto v = ml::from_vector<T>({7, 8});
  EXPECT_EQ(v.shape(), (ml::Shape{2}));
  EXPECT_EQ(v.to_vector(), (std::vector<T>{7, 8}));
  EXPECT_THROW(ml::from_vector<T>({1, 2, 3}, {2, 2}), ml::ShapeError);
}

TYPED_TEST(TensorBasics, EigenRoundTrip) {
  using T = TypeParam;
  Eigen::Matrix<T, 2, 3> m;
  m << 1, 2, 3, 4, 5, 6;
  auto t = ml::from_eigen(m);
  static_assert(std::is_same_v<decltype(t), ml::Tensor<T>>);
  EXPECT_TRUE(mt::values_near(t, {2, 3}, {1, 2, 3, 4, 5, 6}));
  auto back = ml::to_eigen(t);
  EXPECT_EQ(back.rows(), 2);
  EXPECT_EQ(back.cols(), 3);
  EXPECT_TRUE(back.isApprox(m));
  // Column-major sources keep their logical layout.
  Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> cm(3, 2);
  cm << 1, 2, 3, 4, 5, 6;
  EXPECT_TRUE(mt::values_near(ml::from_eigen(cm), {3, 2}, {1, 2, 3, 4, 5, 6}));
  // to_eigen copies.
  back(0, 0) = T(100);
  EXPECT_EQ(t.at(0, 0), T(1));
  // A 1-D tensor is one row.
  auto row = ml::to_eigen(ml::from_vector<T>({1, 2, 3}));
  EXPECT_EQ(row.rows(), 1);
  EXPECT_EQ(row.cols(), 3);
  EXPECT_THROW(ml::to_eigen(ml::zeros<T>({2, 2, 2})), ml::ShapeError);
}

TYPED_TEST(TensorBasics, RandomFactoriesAreDeterministic) {
  using T = TypeParam;
  ml::Generator g1(3);
  ml::Generator g2(3);
  auto a = ml::randn<T>({4, 5}, g1);
  auto b = ml::randn<T>({4, 5}, g2);
  EXPECT_TRUE(mt::bitwise_equal(a, b));
  auto c = ml::randn<T>({4, 5}, g1);
  EXPECT_FALSE(mt::bitwise_equal(a, c));
  ml::Generator g3(4);
  ml::Generator g4(4);
  auto u = ml::uniform<T>({100}, g3, T(-1), T(2));
  EXPECT_TRUE(mt::bitwise_equal(u, ml::uniform<T>({100}, g4, T(-1), T(2))));
  for (T v : u.to_vector()) {
    EXPECT_GE(v, T(-1));
    EXPECT_LE(v, T(2));
  }
  ml::Generator g5(5);
  auto n = ml::randn<T>({2000}, g5, T(3), T(0.5));
  double mean = 0;
  for (T v : n.to_vector()) mean += static_cast<double>(v);
  EXPECT_NEAR(mean / 2000.0, 3.0, 0.05);
}

TYPED_TEST(TensorBasics, AtBoundsErrors) {
  using T = TypeParam;
  auto t = ml::zeros<T>({2, 3});
  EXPECT_THROW((void)t.at(2, 0), ml::ShapeError);
  EXPECT_THROW((void)t.at(0, 3), ml::ShapeError);
  EXPECT_THROW((void)t.at(-1, 0), ml::ShapeError);
  EXPECT_THROW((void)t.at(0), ml::ShapeError);
  EXPECT_THROW((void)t.at(0, 0, 0), ml::ShapeError);
  try {
    (void)t.at(0, 7);
    FAIL();
  } catch (const ml::ShapeError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("Tensor::at", 0), 0u) << msg;
    EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
    EXPECT_NE(msg.find('7'), std::string::npos) << msg;
  }
  t.at(1, 2) = T(5);
  EXPECT_EQ(t.data()[5], T(5));
}

TYPED_TEST(TensorBasics, ItemRequiresOneElement) {
  using T = TypeParam;
  EXPECT_EQ(ml::full<T>({1, 1}, T(3)).item(), T(3));
  try {
    (void)ml::zeros<T>({2, 2}).item();
    FAIL();
  } catch (const ml::ShapeError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("Tensor::item", 0), 0u) << msg;
    EXPECT_NE(msg.find("[2, 2]"), std::string::npos) << msg;
  }
}

TYPED_TEST(TensorBasics, UndefinedTensor) {
  using T = TypeParam;
  ml::Tensor<T> u;
  EXPECT_FALSE(u.defined());
  EXPECT_THROW((void)u.shape(), ml::ValueError);
  std::ostringstream os;
  os << u;
  EXPECT_EQ(os.str(), "Tensor(undefined)");
}

TYPED_TEST(TensorBasics, PrintingShowsShapeAndValues) {
  using T = TypeParam;
  std::ostringstream os;
  os << ml::from_vector<T>({1, 2, 3, 4, 5, 6}, {2, 3});
  const std::string s = os.str();
  EXPECT_NE(s.find("[2, 3]"), std::string::npos) << s;
  EXPECT_NE(s.find("6"), std::string::npos) << s;
  std::ostringstream big;
  big << ml::zeros<T>({100});
  EXPECT_NE(big.str().find("..."), std::string::npos);
  std::ostringstream rg;
  rg << ml::zeros<T>({1}).requires_grad(true);
  EXPECT_NE(rg.str().find("requires_grad"), std::string::npos);
}

TYPED_TEST(TensorBasics, CopySharesStorage) {
  using T = TypeParam;
  auto a = ml::zeros<T>({3});
  auto b = a;
  b.data()[0] = T(1);
  EXPECT_EQ(a.data()[0], T(1));
  EXPECT_EQ(a.impl(), b.impl());
}

TYPED_TEST(TensorBasics, DetachSharesStorageClonesDoNot) {
  using T = TypeParam;
  auto x = ml::from_vector<T>({1, 2, 3}).requires_grad(true);
  auto y = ml::mul_scalar(x, T(2));
  auto d = y.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  EXPECT_EQ(d.grad_fn(), nullptr);
  EXPECT_EQ(d.data(), y.data());
  d.data()[0] = T(10);
  EXPECT_EQ(y.data()[0], T(10));

  auto c = y.clone();
  EXPECT_FALSE(c.requires_grad());
  EXPECT_NE(c.data(), y.data());
  c.data()[1] = T(-1);
  EXPECT_EQ(y.data()[1], T(4));
  EXPECT_TRUE(mt::values_near(c, {3}, {10, -1, 6}));
}

TYPED_TEST(TensorBasics, RequiresGradFlags) {
  using T = TypeParam;
  auto x = ml::ones<T>({2});
  EXPECT_FALSE(x.requires_grad());
  EXPECT_TRUE(x.is_leaf());
  EXPECT_EQ(x.edge(), nullptr);
  x.requires_grad(true);
  EXPECT_TRUE(x.requires_grad());
  ASSERT_NE(x.edge(), nullptr);
  EXPECT_TRUE(x.edge()->is_leaf());
  EXPECT_EQ(x.grad_fn(), nullptr);
  auto y = ml::exp(x);
  EXPECT_TRUE(y.requires_grad());
  EXPECT_FALSE(y.is_leaf());
  ASSERT_NE(y.grad_fn(), nullptr);
  EXPECT_STREQ(y.grad_fn()->name(), "exp");
  // A non-leaf cannot drop requires_grad; keeping it on is a no-op.
  EXPECT_NO_THROW(y.requires_grad(true));
  EXPECT_THROW(y.requires_grad(false), ml::AutogradError);
  try {
    y.requires_grad(false);
  } catch (const ml::AutogradError& e) {
    EXPECT_NE(std::string(e.what()).find("detach"), std::string::npos) << e.what();
  }
  // Turning it off on a leaf stops recording.
  x.requires_grad(false);
  EXPECT_FALSE(ml::exp(x).requires_grad());
  EXPECT_EQ(x.edge(), nullptr);
}

TYPED_TEST(TensorBasics, GradAccessors) {
  using T = TypeParam;
  auto x = ml::zeros<T>({2}).requires_grad(true);
  EXPECT_FALSE(x.grad().defined());
  x.set_grad(ml::ones<T>({2}));
  EXPECT_TRUE(mt::values_near(x.grad(), {2}, {1, 1}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TYPED_TEST(TensorBasics, MatrixAndArrayViews) {
  using T = TypeParam;
  auto t = ml::from_vector<T>({1, 2, 3, 4}, {2, 2});
  t.matrix()(1, 0) = T(9);
  EXPECT_EQ(t.at(1, 0), T(9));
  EXPECT_EQ(t.array().sum(), T(16));
  EXPECT_THROW((void)ml::zeros<T>({1, 1, 1}).matrix(), ml::ShapeError);
}
