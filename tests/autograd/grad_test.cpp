// autograd::grad and Tensor::backward: accumulation, create_graph, retain_graph,
// allow_unused and their errors.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "metalearn/autograd.hpp"
#include "metalearn/tensor.hpp"
#include "support/tensor_assertions.hpp"
#include "support/typed_scalars.hpp"

namespace ml = metalearn;
namespace mt = metalearn::testing;

template <class T>
class Grad : public ::testing::Test {};
TYPED_TEST_SUITE(Grad, mt::RealTypes, mt::RealTypeNames);

TYPED_TEST(Grad, BackwardAccumulatesAcrossCalls) {
  using T = TypeParam;
  auto x = mt::make<T>({2}, {1, 2}).requires_grad(true);
  ml::sum(ml::mul(x, x)).backward();
  EXPECT_TRUE(mt::values_near(x.grad(), {2}, {2, 4}));
  ml::sum(ml::mul_scalar(x, T(3))).backward();
  EXPECT_TRUE(mt::values_near(x.grad(), {2}, {5, 7}));
  x.zero_grad();
  ml::sum(x).backward();
  EXPECT_TRUE(mt::values_near(x.grad(), {2}, {1, 1}));
}

TYPED_TEST(Grad, BackwardTwiceWithRetainGraphAccumulates) {
  using T = TypeParam;
  auto x = mt::make<T>({2}, {1, 2}).requires_grad(true);
  auto y = ml::sum(ml::exp(x));
  y.backward({}, {.retain_graph = true});
  y.backward();
  EXPECT_TRUE(mt::values_near(x.grad(), {2}, {2 * 2.718281828459045, 2 * 7.38905609893065}));
}

TYPED_TEST(Grad, BackwardGradIsNotAliasedWithGraph) {
  using T = TypeParam;
  auto x = mt::make<T>({2}, {1, 2}).requires_grad(true);
  auto s = ml::sum(x);
  s.backward();
  auto g1 = x.grad().clone();
  ml::sum(x).backward();
  EXPECT_TRUE(mt::values_near(g1, {2}, {1, 1}));
  EXPECT_TRUE(mt::values_near(x.grad(), {2}, {2, 2}));
}

TYPED_TEST(Grad, FunctionalGradLeavesDotGradUntouched) {
  using T = TypeParam;
  auto x = mt::make<T>({2}, {1, 2}).requires_grad(true);
  auto g = ml::autograd::grad({ml::sum(ml::mul(x, x))}, {x})[0];
  EXPECT_TRUE(mt::values_near(g, {2}, {2, 4}));
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(g.requires_grad());
  x.set_grad(mt::make<T>({2}, {10, 10}));
  (void)ml::autograd::grad({ml::sum(x)}, {x});
  EXPECT_TRUE(mt::values_near(x.grad(), {2}, {10, 10}));
}

TYPED_TEST(Grad, HigherOrderDerivativesOfXToTheFourth) {
  using T = TypeParam;
  auto x = ml::scalar<T>(T(1.5)).requires_grad(true);
  auto y = ml::mul(ml::mul(x, x), ml::mul(x, x));
  auto d1 = ml::autograd::grad({y}, {x}, {.create_graph = true})[0];
  auto d2 = ml::autograd::grad({d1}, {x}, {.create_graph = true})[0];
  auto d3 = ml::autograd::grad({d2}, {x}, {.create_graph = true})[0];
  auto d4 = ml::autograd::grad({d3}, {x}, {.create_graph = true})[0];
  EXPECT_TRUE(mt::values_near(d1, {}, {4 * 3.375}));  // 4x^3
  EXPECT_TRUE(mt::values_near(d2, {}, {12 * 2.25}));  // 12x^2
  EXPECT_TRUE(mt::values_near(d3, {}, {24 * 1.5}));   // 24x
  EXPECT_TRUE(mt::values_near(d4, {}, {24}));
  EXPECT_TRUE(d3.requires_grad());
}

TYPED_TEST(Grad, HigherOrderThroughTranscendentals) {
  using T = TypeParam;
  // d^3/dx^3 exp(2x) = 8 exp(2x); d^2/dx^2 log(x) = -1/x^2; tanh'' = -2 tanh (1 - tanh^2).
  auto x = ml::scalar<T>(T(0.5)).requires_grad(true);
  auto y = ml::exp(ml::mul_scalar(x, T(2)));
  auto d1 = ml::autograd::grad({y}, {x}, {.create_graph = true})[0];
  auto d2 = ml::autograd::grad({d1}, {x}, {.create_graph = true})[0];
  auto d3 = ml::autograd::grad({d2}, {x})[0];
  EXPECT_TRUE(mt::values_near(d3, {}, {8 * 2.718281828459045}));
  auto l = ml::log(x);
  auto l1 = ml::autograd::grad({l}, {x}, {.create_graph = true})[0];
  auto l2 = ml::autograd::grad({l1}, {x})[0];
  EXPECT_TRUE(mt::values_near(l2, {}, {-4}));
  const double t = 0.46211715726000974;
  auto th = ml::tanh(x);
  auto t1 = ml::autograd::grad({th}, {x}, {.create_graph = true})[0];
  auto t2 = ml::autograd::grad({t1}, {x})[0];
  EXPECT_TRUE(mt::values_near(t2, {}, {-2 * t * (1 - t * t)}));
}

TYPED_TEST(Grad, CreateGraphBackwardGivesDifferentiableLeafGrad) {
  using T = TypeParam;
  auto x = ml::scalar<T>(T(2)).requires_grad(true);
  ml::mul(ml::mul(x, x), x).backward({}, {.create_graph = true});
  auto g = x.grad();  // 3x^2, in the graph
  EXPECT_TRUE(mt::values_near(g, {}, {12}));
  ASSERT_TRUE(g.requires_grad());
  auto h = ml::autograd::grad({g}, {x})[0];
  EXPECT_TRUE(mt::values_near(h, {}, {12}));  // 6x
}

TYPED_TEST(Grad, SecondBackwardWithoutRetainGraphThrows) {
  using T = TypeParam;
  auto x = mt::make<T>({2}, {1, 2}).requires_grad(true);
  auto y = ml::sum(ml::mul(x, x));
  y.backward();
  try {
    y.backward();
    FAIL() << "nothing thrown";
  } catch (const ml::AutogradError& e) {
    EXPECT_NE(std::string(e.what()).find("retain_graph"), std::string::npos) << e.what();
  }
  auto z = ml::sum(ml::exp(x));
  (void)ml::autograd::grad({z}, {x});
  EXPECT_THROW((void)ml::autograd::grad({z}, {x}), ml::AutogradError);
  // With retain_graph both calls work.
  auto w = ml::sum(ml::exp(x));
  (void)ml::autograd::grad({w}, {x}, {.retain_graph = true});
  EXPECT_NO_THROW((void)ml::autograd::grad({w}, {x}));
}

TYPED_TEST(Grad, UnusedInputThrowsUnlessAllowed) {
  using T = TypeParam;
  auto x = mt::make<T>({2}, {1, 2}).requires_grad(true);
  auto u = mt::make<T>({3}, {1, 2, 3}).requires_grad(true);
  auto y = ml::sum(ml::mul(x, x));
  try {
    (void)ml::autograd::grad({y}, {x, u}, {.retain_graph = true});
    FAIL() << "nothing thrown";
  } catch (const ml::AutogradError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("allow_unused"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[3]"), std::string::npos) << msg;
  }
  auto g = ml::autograd::grad({y}, {x, u}, {.allow_unused = true});
  EXPECT_TRUE(mt::values_near(g[0], {2}, {2, 4}));
  EXPECT_FALSE(g[1].defined());
  // An input that does not require grad at all is also "unused".
  auto c = mt::make<T>({1}, {1});
  auto y2 = ml::sum(ml::mul(x, x));
  EXPECT_THROW((void)ml::autograd::grad({y2}, {c}), ml::AutogradError);
}

TYPED_TEST(Grad, OutputNotRequiringGradThrows) {
  using T = TypeParam;
  auto c = mt::make<T>({2}, {1, 2});
  try {
    (void)ml::autograd::grad({ml::sum(c)}, {c});
    FAIL() << "nothing thrown";
  } catch (const ml::AutogradError& e) {
    EXPECT_NE(std::string(e.what()).find("does not require grad"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ml::sum(c).backward(), ml::AutogradError);
  auto x = mt::make<T>({2}, {1, 2}).requires_grad(true);
  ml::Tensor<T> y;
  {
    ml::autograd::NoGradGuard no_grad;
    y = ml::sum(ml::mul(x, x));
  }
  EXPECT_FALSE(y.requires_grad());
  EXPECT_THROW(y.backward(), ml::AutogradError);
}

TYPED_TEST(Grad, NonScalarOutputNeedsGradOutputs) {
  using T = TypeParam;
  auto x = mt::make<T>({2}, {1, 2}).requires_grad(true);
  auto y = ml::mul(x, x);
  EXPECT_THROW((void)ml::autograd::grad({y}, {x}, {.retain_graph = true}), ml::AutogradError);
  EXPECT_THROW((void)ml::autograd::grad({y}, {x}, {.retain_graph = true}, {ml::ones<T>({3})}),
               ml::ShapeError);
  auto g = ml::autograd::grad({y}, {x}, {}, {mt::make<T>({2}, {1, -1})})[0];
  EXPECT_TRUE(mt::values_near(g, {2}, {2, -4}));
  auto z = ml::mul(x, x);
  z.backward(mt::make<T>({2}, {0.5, 1}));
  EXPECT_TRUE(mt::values_near(x.grad(), {2}, {1, 4}));
}

TYPED_TEST(Grad, LeafOutputGradientIsTheSeed) {
  using T = TypeParam;
  auto x = ml::scalar<T>(T(3)).requires_grad(true);
  auto g = ml::autograd::grad({x}, {x})[0];
  EXPECT_TRUE(mt::values_near(g, {}, {1}));
}

TYPED_TEST(Grad, DetachCutsTheGraph) {
  using T = TypeParam;
  auto x = ml::scalar<T>(T(3)).requires_grad(true);
  auto y = ml::mul(x, x.detach());  // x * const
  auto g = ml::autograd::grad({y}, {x})[0];
  EXPECT_TRUE(mt::values_near(g, {}, {3}));
}

TYPED_TEST(Grad, AutogradBackwardFreeFunction) {
  using T = TypeParam;
  auto x = mt::make<T>({2}, {1, 2}).requires_grad(true);
  ml::autograd::backward<T>({ml::sum(ml::mul(x, x)), ml::sum(x)});
  EXPECT_TRUE(mt::values_near(x.grad(), {2}, {3, 5}));
}
