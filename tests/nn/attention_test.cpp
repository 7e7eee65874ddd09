// Multi-head attention: a one-head case against a hand computation, two heads against
// the sum of their separate contributions, gradcheck and gradgradcheck w.r.t. every
// input and projection, the module's self-attention and fast weights, and shape errors.
#include <gtest/gtest.h>

#include <cmath>
#include <metalearn/autograd.hpp>
#include <metalearn/nn.hpp>
#include <vector>

namespace ml = metalearn;
namespace nn = metalearn::nn;
namespace F = metalearn::nn::functional;
using TensorD = ml::Tensor<double>;

namespace {

TensorD eye(ml::Index n) {
  std::vector<double> v(static_cast<std::size_t>(n * n), 0.0);
  for (ml::Index i = 0; i < n; ++i) v[static_cast<std::size_t>(i * n + i)] = 1.0;
  return ml::from_vector<double>(v, ml::Shape{n, n});
}

TEST(Attention, OneHeadWithIdentityProjectionsIsSoftmaxOfScaledDotProducts) {
  const auto q = ml::from_vector<double>({1.0, 0.0, 0.5, -1.0}, ml::Shape{2, 2});
  const auto k = ml::from_vector<double>({1.0, 2.0, -1.0, 0.0, 0.3, 0.3}, ml::Shape{3, 2});
  const auto v = ml::from_vector<double>({1.0, 10.0, 2.0, 20.0, 3.0, 30.0}, ml::Shape{3, 2});
  const auto out = F::multihead_attention(q, k, v, eye(2), eye(2), eye(2), eye(2), 1);
  ASSERT_EQ(out.shape(), (ml::Shape{2, 2}));
  for (ml::Index i = 0; i < 2; ++i) {
    double w[3], total = 0.0;
    for (ml::Index j = 0; j < 3; ++j) {
      const double dot = q.at(i, 0) * k.at(j, 0) + q.at(i, 1) * k.at(j, 1);
      w[j] = std::exp(dot / std::sqrt(2.0));
      total += w[j];
    }
    for (ml::Index d = 0; d < 2; ++d) {
      double expected = 0.0;
      for (ml::Index j = 0; j < 3; ++j) expected += w[j] / total * v.at(j, d);
      EXPECT_NEAR(out.at(i, d), expected, 1e-12);
    }
  }
}

TEST(Attention, TwoHeadsAreTheSumOfTheirSeparateContributions) {
  ml::Generator gen(2);
  const auto q = ml::randn<double>({4, 3}, gen);
  const auto k = ml::randn<double>({5, 2}, gen);
  const auto v = ml::randn<double>({5, 6}, gen);
  const auto wq = ml::randn<double>({4, 3}, gen);  // 2 heads x 2 features
  const auto wk = ml::randn<double>({4, 2}, gen);
  const auto wv = ml::randn<double>({4, 6}, gen);
  const auto wo = ml::randn<double>({3, 4}, gen);
  const auto both = F::multihead_attention(q, k, v, wq, wk, wv, wo, 2);
  TensorD sum;
  for (ml::Index h = 0; h < 2; ++h) {
    const auto rows = [&](const TensorD& w) { return ml::slice(w, 0, 2 * h, 2 * h + 2); };
    const auto part = F::multihead_attention(q, k, v, rows(wq), rows(wk), rows(wv),
                                             ml::slice(wo, 1, 2 * h, 2 * h + 2), 1);
    sum = h == 0 ? part : ml::add(sum, part);
  }
  for (ml::Index i = 0; i < both.numel(); ++i) {
    EXPECT_NEAR(both.data()[i], sum.data()[i], 1e-12);
  }
}

TEST(Attention, GradcheckAndGradgradcheckOfEveryOperand) {
  ml::Generator gen(3);
  const std::vector<TensorD> in{ml::randn<double>({3, 2}, gen), ml::randn<double>({4, 3}, gen),
                                ml::randn<double>({4, 2}, gen), ml::randn<double>({4, 2}, gen),
                                ml::randn<double>({4, 3}, gen), ml::randn<double>({4, 2}, gen),
                                ml::randn<double>({2, 4}, gen)};
  const auto f = [](const std::vector<TensorD>& a) {
    return F::multihead_attention(a[0], a[1], a[2], a[3], a[4], a[5], a[6], 2);
  };
  const auto r1 = ml::autograd::gradcheck(f, in);
  EXPECT_TRUE(r1.ok) << r1.message;
  const auto r2 = ml::autograd::gradgradcheck(f, in);
  EXPECT_TRUE(r2.ok) << r2.message;
}

TEST(Attention, ModuleSelfAttentionFastWeightsAndErrors) {
  ml::Generator gen(4);
  nn::MultiheadAttention<double> att(4, 4, 4, 2, gen);
  const auto names = att.named_parameters();
  ASSERT_EQ(names.size(), 4u);
  EXPECT_NE(names.find("q_proj"), nullptr);
  EXPECT_EQ(names.find("out_proj")->shape(), (ml::Shape{4, 4}));
  const auto x = ml::randn<double>({5, 4}, gen);
  const auto self = att.forward(x);
  const auto cross = att.attend(x, x, x);
  for (ml::Index i = 0; i < self.numel(); ++i) EXPECT_EQ(self.data()[i], cross.data()[i]);
  // Fast weights: doubling the value projection doubles the output (linear in values).
  std::vector<TensorD> values = names.values();
  values[2] = ml::mul_scalar(values[2], 2.0);
  const auto twice = att.attend(x, x, x, names.with_values(values));
  for (ml::Index i = 0; i < self.numel(); ++i) {
    EXPECT_NEAR(twice.data()[i], 2.0 * self.data()[i], 1e-12);
  }
  EXPECT_THROW((void)att.attend(x, ml::randn<double>({3, 4}, gen), x), ml::ShapeError);
  EXPECT_THROW((void)att.attend(ml::randn<double>({5, 3}, gen), x, x), ml::ShapeError);
  EXPECT_THROW(nn::MultiheadAttention<double>(4, 4, 1, 2, gen), ml::ValueError);
  // A clone has its own parameters.
  const auto copy = att.clone();
  EXPECT_NE(copy->named_parameters().find("q_proj")->data(), names.find("q_proj")->data());
}

}  // namespace
