// The backward engine: very deep graphs, heavily shared graphs, each node once.

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "metalearn/autograd.hpp"
#include "metalearn/tensor.hpp"
#include "support/tensor_assertions.hpp"

namespace ml = metalearn;
namespace mt = metalearn::testing;
using TD = ml::Tensor<double>;

namespace {

/// Identity op whose backward rule counts how often it is applied.
TD counted(const TD& a, int* applied) {
  TD out = TD::from_storage(a.storage(), a.shape());
  ml::detail::record(out, "counted", {&a}, [applied](ml::Node<double>&, const TD& g) {
    ++*applied;
    return std::vector<TD>{g};
  });
  return out;
}

}  // namespace

TEST(Engine, HundredThousandOpChainBackward) {
  constexpr int kDepth = 100'000;
  auto x = ml::from_vector<double>({0.5, -0.25}).requires_grad(true);
  TD y = x;
  for (int i = 0; i < kDepth; ++i)
    y = (i % 2 == 0) ? ml::add_scalar(y, 1e-6) : ml::mul(y, y) * 0.0 + y;
  // y = x + (kDepth / 2) * 1e-6 exactly in the derivative: dy/dx = 1.
  ml::sum(y).backward();
  EXPECT_TRUE(mt::values_near(x.grad(), {2}, {1, 1}, 1e-12));
}

TEST(Engine, HundredThousandOpChainGrad) {
  constexpr int kDepth = 100'000;
  auto x = ml::scalar<double>(0.3).requires_grad(true);
  TD y = x;
  for (int i = 0; i < kDepth; ++i) y = ml::mul_scalar(y, 1.0);
  auto g = ml::autograd::grad({y}, {x}, {.create_graph = true})[0];
  EXPECT_DOUBLE_EQ(g.item(), 1.0);
  // The gradient graph is as deep as the forward graph; both are released here.
}

TEST(Engine, HundredThousandOpChainDestroyedWithoutBackward) {
  constexpr int kDepth = 100'000;
  auto x = ml::from_vector<double>({1.0, 2.0}).requires_grad(true);
  {
    TD y = x;
    for (int i = 0; i < kDepth; ++i) y = ml::tanh(ml::mul(y, x));
    EXPECT_TRUE(y.requires_grad());
  }  // the whole chain is destroyed here
  SUCCEED();
}

TEST(Engine, SharedSubexpressionsSixtyLevels) {
  // x_{i+1} = x_i * x_i + x_i: 3^60 paths from output to input.
  const double x0 = 0.01;
  auto x = ml::scalar<double>(x0).requires_grad(true);
  TD y = x;
  double v = x0;
  double dv = 1.0;
  for (int i = 0; i < 60; ++i) {
    y = y * y + y;
    dv = dv * (2 * v + 1);
    v = v * v + v;
  }
  EXPECT_NEAR(y.item(), v, 1e-12 * std::abs(v));
  auto g = ml::autograd::grad({y}, {x}, {.retain_graph = true})[0];
  EXPECT_NEAR(g.item(), dv, 1e-10 * std::abs(dv));
  y.backward();
  EXPECT_NEAR(x.grad().item(), dv, 1e-10 * std::abs(dv));
}

TEST(Engine, DiamondLadderAppliesEachNodeOnce) {
  constexpr int kLevels = 1000;
  int applied = 0;
  auto x = ml::from_vector<double>({1.5, -2.0}).requires_grad(true);
  TD y = x;
  for (int i = 0; i < kLevels; ++i) {
    TD c = counted(y, &applied);
    y = ml::add(ml::mul_scalar(c, 0.25), ml::mul_scalar(c, 0.75));  // two paths per level
  }
  auto g = ml::autograd::grad({ml::sum(y)}, {x}, {.retain_graph = true})[0];
  EXPECT_TRUE(mt::values_near(g, {2}, {1, 1}, 1e-12));
  EXPECT_EQ(applied, kLevels);

  applied = 0;
  ml::sum(y).backward();
  EXPECT_EQ(applied, kLevels);
  EXPECT_TRUE(mt::values_near(x.grad(), {2}, {1, 1}, 1e-12));
}

TEST(Engine, DiamondLadderSecondOrderAppliesEachNodeOnce) {
  constexpr int kLevels = 200;
  int applied = 0;
  auto x = ml::scalar<double>(0.7).requires_grad(true);
  TD y = x;
  for (int i = 0; i < kLevels; ++i) {
    TD c = counted(y, &applied);
    y = ml::add(ml::mul_scalar(c, 0.5), ml::mul_scalar(c, 0.5));
  }
  y = ml::mul(y, y);  // x^2 after the ladder
  auto g = ml::autograd::grad({y}, {x}, {.create_graph = true})[0];
  EXPECT_EQ(applied, kLevels);
  EXPECT_NEAR(g.item(), 1.4, 1e-12);
  applied = 0;
  auto h = ml::autograd::grad({g}, {x})[0];
  EXPECT_NEAR(h.item(), 2.0, 1e-12);
  // The ladder's rule ran again only if the second pass went through it, still once.
  EXPECT_LE(applied, kLevels);
}

TEST(Engine, OnlyNodesLeadingToRequestedInputsRun) {
  int applied = 0;
  auto a = ml::scalar<double>(2.0).requires_grad(true);
  auto b = ml::scalar<double>(3.0).requires_grad(true);
  TD cb = counted(b, &applied);
  TD y = ml::mul(a, a) + ml::mul(cb, cb);
  auto ga = ml::autograd::grad({y}, {a})[0];
  EXPECT_DOUBLE_EQ(ga.item(), 4.0);
  EXPECT_EQ(applied, 0);
}

TEST(Engine, MultipleOutputsAndGradOutputs) {
  auto x = ml::from_vector<double>({1, 2, 3}).requires_grad(true);
  TD y1 = ml::mul(x, x);  // [3]
  TD y2 = ml::sum(x);     // []
  auto g = ml::autograd::grad<double>({y1, y2}, {x}, {},
                                      {ml::from_vector<double>({1, 0, -1}), ml::scalar(2.0)});
  // 2x * [1, 0, -1] + 2
  EXPECT_TRUE(mt::values_near(g[0], {3}, {4, 2, -4}));
}

TEST(Engine, GradientOfANonLeaf) {
  auto x = ml::scalar<double>(3.0).requires_grad(true);
  TD h = ml::mul(x, x);
  TD y = ml::mul(h, h);  // x^4 = h^2
  auto g = ml::autograd::grad({y}, {h, x});
  EXPECT_DOUBLE_EQ(g[0].item(), 18.0);   // 2h
  EXPECT_DOUBLE_EQ(g[1].item(), 108.0);  // 4x^3
}

TEST(Engine, BackwardAccumulatesIntoAllLeaves) {
  auto a = ml::from_vector<double>({1, 2}).requires_grad(true);
  auto b = ml::from_vector<double>({3, 4}).requires_grad(true);
  auto c = ml::from_vector<double>({5, 6});  // no grad
  ml::sum(a * b * c).backward();
  EXPECT_TRUE(mt::values_near(a.grad(), {2}, {15, 24}));
  EXPECT_TRUE(mt::values_near(b.grad(), {2}, {5, 12}));
  EXPECT_FALSE(c.grad().defined());
}

// A node of a bilinear op keeps an argument only when the other argument needs a
// gradient (the only gradient that reads it): a product with a constant mask, or a
// first convolution over data, does not keep the tensor that needs the gradient.
TEST(Engine, BilinearNodesKeepOnlyWhatAGradientReads) {
  // How many handles share t: a node that keeps t holds one more.
  const auto handles = [](const TD& t) { return t.impl_ptr().use_count(); };
  const TD leaf = ml::from_vector<double>({1, -2, 3}).requires_grad(true);
  const TD x = ml::mul_scalar(leaf, 2.0);
  const TD mask = ml::from_vector<double>({1, 0, 1});
  const long x_before = handles(x), mask_before = handles(mask);
  const TD y = ml::mul(x, mask);
  EXPECT_EQ(handles(x), x_before);            // not kept: mask needs no gradient
  EXPECT_EQ(handles(mask), mask_before + 1);  // kept for x's gradient
  EXPECT_TRUE(mt::values_near(ml::autograd::grad({ml::sum(y)}, {leaf})[0], {3}, {2, 0, 2}));

  ml::Generator gen(3);
  const TD data = ml::randn<double>({2, 1, 5, 5}, gen);
  const TD w = ml::randn<double>({4, 1, 3, 3}, gen).requires_grad(true);
  const long data_before = handles(data), w_before = handles(w);
  const TD out = ml::conv2d(data, w);
  EXPECT_EQ(handles(data), data_before + 1);  // kept for w's gradient
  EXPECT_EQ(handles(w), w_before);            // not kept: the data needs no gradient
  // The recorded weight gradient of a first layer keeps the data, not the output
  // gradient, and is still differentiable in it.
  const ml::Conv2dGeometry geometry{1, 5, 5, 3, 3, 1, 0};
  const TD gy = ml::randn<double>(out.shape(), gen).requires_grad(true);
  const long gy_before = handles(gy);
  const TD gw = ml::detail::conv2d_weight_grad(data, gy, geometry);
  EXPECT_EQ(handles(gy), gy_before);
  const TD ggy = ml::autograd::grad({ml::sum(gw)}, {gy})[0];
  EXPECT_TRUE(
      mt::values_near(ggy, out.shape(), ml::conv2d(data, ml::ones<double>(w.shape())).to_vector()));
}
