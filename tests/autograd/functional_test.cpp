// hvp, jacobian and hessian against closed forms.

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "metalearn/autograd.hpp"
#include "metalearn/tensor.hpp"
#include "support/tensor_assertions.hpp"
#include "support/typed_scalars.hpp"

namespace ml = metalearn;
namespace mt = metalearn::testing;
namespace ag = metalearn::autograd;

template <class T>
class Functional : public ::testing::Test {};
TYPED_TEST_SUITE(Functional, mt::RealTypes, mt::RealTypeNames);

TYPED_TEST(Functional, HvpOfCubicSum) {
  using T = TypeParam;
  // f = sum(x^3): H = diag(6x), so H v = 6 x v.
  auto x = mt::make<T>({3}, {1, -2, 0.5}).requires_grad(true);
  auto f = ml::sum(ml::mul(ml::mul(x, x), x));
  auto hv = ag::hvp(f, {x}, {mt::make<T>({3}, {1, 2, 3})});
  ASSERT_EQ(hv.size(), 1u);
  EXPECT_TRUE(mt::values_near(hv[0], {3}, {6, -24, 9}));
  // The graph of f is retained: a second product works.
  auto hv2 = ag::hvp(f, {x}, {mt::make<T>({3}, {1, 0, 0})});
  EXPECT_TRUE(mt::values_near(hv2[0], {3}, {6, 0, 0}));
}

TYPED_TEST(Functional, HvpOfQuadraticFormTwoInputs) {
  using T = TypeParam;
  // f(x, y) = x^T A y + sum(y^2), A = [[1, 2], [3, 4]].
  // H = [[0, A], [A^T, 2I]]; H (u, w) = (A w, A^T u + 2 w).
  auto A = mt::make<T>({2, 2}, {1, 2, 3, 4});
  auto x = mt::make<T>({2, 1}, {0.3, -0.7}).requires_grad(true);
  auto y = mt::make<T>({2, 1}, {1.1, 0.2}).requires_grad(true);
  auto f = ml::add(ml::sum(ml::mm(x, ml::matmul(A, y), true, false)), ml::sum(ml::square(y)));
  auto u = mt::make<T>({2, 1}, {1, -1});
  auto w = mt::make<T>({2, 1}, {2, 0.5});
  auto hv = ag::hvp(f, {x, y}, {u, w});
  EXPECT_TRUE(mt::values_near(hv[0], {2, 1}, {1 * 2 + 2 * 0.5, 3 * 2 + 4 * 0.5}));
  EXPECT_TRUE(mt::values_near(hv[1], {2, 1}, {1 * 1 + 3 * -1 + 4, 2 * 1 + 4 * -1 + 1}));
  EXPECT_THROW(ag::hvp(f, {x, y}, {u}), ml::ValueError);
  EXPECT_THROW(ag::hvp(f, {x, y}, {u, mt::make<T>({2}, {1, 1})}), ml::ShapeError);
}

TYPED_TEST(Functional, HvpWithCreateGraphIsDifferentiable) {
  using T = TypeParam;
  // f = sum(x^4) / 12: H v = x^2 v; d/dx sum(H v) = 2 x v.
  auto x = mt::make<T>({2}, {1.5, -1}).requires_grad(true);
  auto f = ml::mul_scalar(ml::sum(ml::pow(x, T(4))), T(1) / T(12));
  auto v = mt::make<T>({2}, {2, 3});
  auto hv = ag::hvp(f, {x}, {v}, true);
  EXPECT_TRUE(mt::values_near(hv[0], {2}, {4.5, 3}));
  auto g = ag::grad({ml::sum(hv[0])}, {x})[0];
  EXPECT_TRUE(mt::values_near(g, {2}, {6, -6}));
}

TYPED_TEST(Functional, JacobianOfLinearMap) {
  using T = TypeParam;
  auto A = mt::make<T>({2, 3}, {1, 2, 3, 4, 5, 6});
  std::function<ml::Tensor<T>(const ml::Tensor<T>&)> f = [&A](const ml::Tensor<T>& z) {
    return ml::reshape(ml::matmul(A, ml::reshape(z, std::vector<ml::Index>{3, 1})),
                       std::vector<ml::Index>{2});
  };
  auto J = ag::jacobian<T>(f, mt::make<T>({3}, {0.1, 0.2, 0.3}));
  EXPECT_TRUE(mt::values_near(J, {2, 3}, {1, 2, 3, 4, 5, 6}));
}

TYPED_TEST(Functional, JacobianOfElementwiseMap) {
  using T = TypeParam;
  std::function<ml::Tensor<T>(const ml::Tensor<T>&)> f = [](const ml::Tensor<T>& z) {
    return ml::exp(z);
  };
  auto J = ag::jacobian<T>(f, mt::make<T>({2}, {0, 1}));
  EXPECT_TRUE(mt::values_near(J, {2, 2}, {1, 0, 0, 2.718281828459045}));
}

TYPED_TEST(Functional, HessianOfQuadraticForm) {
  using T = TypeParam;
  // f(x) = x^T A x: H = A + A^T for any x.
  auto A = mt::make<T>({3, 3}, {1, 2, 0, -1, 3, 4, 0.5, 0, 2});
  std::function<ml::Tensor<T>(const ml::Tensor<T>&)> f = [&A](const ml::Tensor<T>& z) {
    auto c = ml::reshape(z, std::vector<ml::Index>{3, 1});
    return ml::sum(ml::mm(c, ml::matmul(A, c), true, false));
  };
  auto H = ag::hessian<T>(f, mt::make<T>({3}, {0.3, -1, 2}));
  EXPECT_TRUE(mt::values_near(H, {3, 3}, {2, 1, 0.5, 1, 6, 4, 0.5, 4, 4}));
}

TYPED_TEST(Functional, HessianOfLogsumexp) {
  using T = TypeParam;
  // H = diag(p) - p p^T with p = softmax(x).
  const std::vector<double> xs{0.5, -1, 2};
  double s = 0;
  for (double v : xs) s += std::exp(v);
  std::vector<double> p;
  for (double v : xs) p.push_back(std::exp(v) / s);
  std::vector<double> want;
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t j = 0; j < 3; ++j) want.push_back((i == j ? p[i] : 0.0) - p[i] * p[j]);
  }
  std::function<ml::Tensor<T>(const ml::Tensor<T>&)> f = [](const ml::Tensor<T>& z) {
    return ml::logsumexp(z);
  };
  auto H = ag::hessian<T>(f, mt::make<T>({3}, xs));
  EXPECT_TRUE(mt::values_near(H, {3, 3}, want, std::is_same_v<T, float> ? 1e-5 : 1e-12));
}

TYPED_TEST(Functional, HessianOfLinearFunctionIsZero) {
  using T = TypeParam;
  std::function<ml::Tensor<T>(const ml::Tensor<T>&)> f = [](const ml::Tensor<T>& z) {
    return ml::sum(ml::mul_scalar(z, T(3)));
  };
  auto H = ag::hessian<T>(f, mt::make<T>({2}, {1, 2}));
  EXPECT_TRUE(mt::values_near(H, {2, 2}, {0, 0, 0, 0}));
}

TYPED_TEST(Functional, HessianRejectsNonScalar) {
  using T = TypeParam;
  std::function<ml::Tensor<T>(const ml::Tensor<T>&)> f = [](const ml::Tensor<T>& z) {
    return ml::mul(z, z);
  };
  EXPECT_THROW(ag::hessian<T>(f, mt::make<T>({2}, {1, 2})), ml::ShapeError);
}
