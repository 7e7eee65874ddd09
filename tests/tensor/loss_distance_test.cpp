// Losses and distances: values over float and double, gradients in double.

#include <gtest/gtest.h>

#include <cmath>
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
class Loss : public ::testing::Test {};
TYPED_TEST_SUITE(Loss, mt::RealTypes, mt::RealTypeNames);

TYPED_TEST(Loss, Mse) {
  using T = TypeParam;
  auto p = mt::make<T>({3}, {1, 2, 3});
  auto t = mt::make<T>({3}, {1, 1, 1});
  EXPECT_TRUE(mt::values_near(ml::mse_loss(p, t), {}, {5.0 / 3}));
  auto pv = p.detach().clone().requires_grad(true);
  auto g = ml::autograd::grad({ml::mse_loss(pv, t)}, {pv})[0];
  EXPECT_TRUE(mt::values_near(g, {3}, {0, 2.0 / 3, 4.0 / 3}));
  EXPECT_THROW(ml::mse_loss(p, ml::zeros<T>({3, 1})), ml::ShapeError);
}

TYPED_TEST(Loss, CrossEntropy) {
  using T = TypeParam;
  auto logits = mt::make<T>({2, 3}, {1, 5, 3, 4, 2, 6});
  // -(log_softmax[0, 1] + log_softmax[1, 0]) / 2
  EXPECT_TRUE(mt::values_near(ml::cross_entropy(logits, V{1, 0}), {}, {1.142931628499899}));
  auto lv = logits.detach().clone().requires_grad(true);
  auto g = ml::autograd::grad({ml::cross_entropy(lv, V{1, 0})}, {lv})[0];
  // (softmax - onehot) / N
  EXPECT_TRUE(mt::values_near(
      g, {2, 3},
      {0.015876239976466765 / 2, (0.8668133321973348 - 1) / 2, 0.11731042782619835 / 2,
       (0.11731042782619835 - 1) / 2, 0.015876239976466765 / 2, 0.8668133321973348 / 2}));
  EXPECT_THROW(ml::cross_entropy(logits, V{1, 3}), ml::ValueError);
  EXPECT_THROW(ml::cross_entropy(logits, V{-1, 0}), ml::ValueError);
  EXPECT_THROW(ml::cross_entropy(logits, V{1}), ml::ShapeError);
  EXPECT_THROW(ml::cross_entropy(mt::make<T>({3}, {1, 2, 3}), V{0}), ml::ShapeError);
}

TYPED_TEST(Loss, PolicyGradient) {
  using T = TypeParam;
  auto logits = mt::make<T>({2, 3}, {1, 5, 3, 4, 2, 6});
  const std::vector<double> w{2.0, -0.5};
  // -(2 log_softmax[0, 1] - 0.5 log_softmax[1, 0]) / 2, with log_softmax[0, 1] =
  // -0.14293163 and log_softmax[1, 0] = -2.14293163 (the rows of the CrossEntropy case)
  EXPECT_TRUE(mt::values_near(ml::policy_gradient_loss(logits, V{1, 0}, w), {},
                              {(2 * 0.142931628499899 - 0.5 * 2.142931628499899) / 2}));
  // Weights of one give the cross-entropy.
  const std::vector<double> ones{1.0, 1.0};
  EXPECT_TRUE(
      mt::values_near(ml::policy_gradient_loss(logits, V{1, 0}, ones), {}, {1.142931628499899}));
  // The gradient is w_i (softmax - onehot) / N: the score-function estimate.
  auto lv = logits.detach().clone().requires_grad(true);
  auto g = ml::autograd::grad({ml::policy_gradient_loss(lv, V{1, 0}, w)}, {lv})[0];
  EXPECT_TRUE(mt::values_near(g, {2, 3},
                              {2 * 0.015876239976466765 / 2, 2 * (0.8668133321973348 - 1) / 2,
                               2 * 0.11731042782619835 / 2, -0.5 * (0.11731042782619835 - 1) / 2,
                               -0.5 * 0.015876239976466765 / 2, -0.5 * 0.8668133321973348 / 2}));
  EXPECT_THROW(ml::policy_gradient_loss(logits, V{1, 3}, w), ml::ValueError);
  EXPECT_THROW(ml::policy_gradient_loss(logits, V{1}, std::vector<double>{1.0}), ml::ShapeError);
  EXPECT_THROW(ml::policy_gradient_loss(logits, V{1, 0}, std::vector<double>{1.0}), ml::ShapeError);
  EXPECT_THROW(ml::policy_gradient_loss(logits, V{1, 0}, std::vector<double>{1.0, std::nan("")}),
               ml::ValueError);
}

TYPED_TEST(Loss, GaussianNll) {
  using T = TypeParam;
  auto mean = mt::make<T>({2}, {0, 1});
  auto var = mt::make<T>({2}, {1, 4});
  auto target = mt::make<T>({2}, {1, 1});
  // mean of 0.5 * (log var + (target - mean)^2 / var)
  EXPECT_TRUE(mt::values_near(ml::gaussian_nll_loss(mean, var, target), {}, {0.5965735902799727}));
  EXPECT_TRUE(mt::values_near(ml::gaussian_nll_loss(mean, var, target, true), {},
                              {0.5965735902799727 + 0.9189385332046727}));
  EXPECT_THROW(ml::gaussian_nll_loss(mean, mt::make<T>({2}, {1, -1}), target), ml::ValueError);
  EXPECT_THROW(ml::gaussian_nll_loss(mean, var, ml::zeros<T>({3})), ml::ShapeError);
}

TYPED_TEST(Loss, Accuracy) {
  using T = TypeParam;
  auto logits = mt::make<T>({3, 2}, {1, 0, 0, 1, 2, 3});
  EXPECT_DOUBLE_EQ(ml::accuracy(logits, V{0, 1, 0}), 2.0 / 3);
}

TYPED_TEST(Loss, PairwiseSqDist) {
  using T = TypeParam;
  auto x = mt::make<T>({2, 2}, {0, 0, 1, 1});
  auto y = mt::make<T>({3, 2}, {1, 0, 3, 4, 0, 0});
  EXPECT_TRUE(mt::values_near(ml::pairwise_sq_dist(x, y), {2, 3}, {1, 25, 0, 1, 13, 2}));
  EXPECT_THROW(ml::pairwise_sq_dist(x, ml::zeros<T>({3, 3})), ml::ShapeError);
}

TYPED_TEST(Loss, CosineSimilarity) {
  using T = TypeParam;
  auto x = mt::make<T>({2, 2}, {1, 0, 1, 1});
  auto y = mt::make<T>({2, 2}, {0, 2, 3, 0});
  const double h = 1.0 / std::sqrt(2.0);
  EXPECT_TRUE(mt::values_near(ml::cosine_similarity(x, y), {2, 2}, {0, 1, h, h}));
  EXPECT_THROW(ml::cosine_similarity(x, ml::zeros<T>({2, 3})), ml::ShapeError);
}

// ---- gradient checks (double) --------------------------------------------------

TEST(LossGradcheck, Mse) {
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::mse_loss(v[0], v[1]); },
                                  {{4, 2}, {4, 2}}));
}

TEST(LossGradcheck, CrossEntropy) {
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) {
        return ml::cross_entropy(v[0], V{2, 0, 1, 2});
      },
      {{4, 3}}, {.lo = -2, .hi = 2}));
}

TEST(LossGradcheck, PolicyGradient) {
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) {
        return ml::policy_gradient_loss(v[0], V{2, 0, 1, 2},
                                        std::vector<double>{1.5, -0.7, 0.2, 3});
      },
      {{4, 3}}, {.lo = -2, .hi = 2}));
}

TEST(LossGradcheck, GaussianNll) {
  const auto in = mt::random_inputs({{3, 2}, {3, 2}, {3, 2}}, -1, 1, 4);
  Args inputs{in[0], ml::add_scalar(ml::abs(in[1]), 0.5), in[2]};
  EXPECT_TRUE(mt::check_gradients_at(
      [](const Args& v) { return ml::gaussian_nll_loss(v[0], v[1], v[2]); }, inputs));
  EXPECT_TRUE(mt::check_gradients_at(
      [](const Args& v) { return ml::gaussian_nll_loss(v[0], v[1], v[2], true); }, inputs));
}

TEST(LossGradcheck, PairwiseSqDist) {
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::pairwise_sq_dist(v[0], v[1]); },
                                  {{3, 4}, {2, 4}}));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::pairwise_sq_dist(v[0], v[0]); },
                                  {{3, 2}}));
}

TEST(LossGradcheck, CosineSimilarity) {
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::cosine_similarity(v[0], v[1]); },
                                  {{3, 4}, {2, 4}}));
}
