// Initialisers: bounds, statistics, determinism, PyTorch-like defaults.

#include <gtest/gtest.h>

#include <cmath>
#include <metalearn/nn.hpp>

namespace ml = metalearn;
namespace nn = metalearn::nn;

namespace {
double max_abs(const ml::Tensor<double>& t) {
  double m = 0;
  for (ml::Index i = 0; i < t.numel(); ++i) m = std::max(m, std::abs(t.data()[i]));
  return m;
}
std::pair<double, double> mean_std(const ml::Tensor<double>& t) {
  double s = 0, s2 = 0;
  for (ml::Index i = 0; i < t.numel(); ++i) {
    s += t.data()[i];
    s2 += t.data()[i] * t.data()[i];
  }
  const double n = static_cast<double>(t.numel());
  return {s / n, std::sqrt(s2 / n - (s / n) * (s / n))};
}
}  // namespace

TEST(Init, FansAndGains) {
  EXPECT_EQ(nn::init::fans(ml::Shape{64, 32, 3, 3}), (std::pair<ml::Index, ml::Index>{288, 576}));
  EXPECT_EQ(nn::init::fans(ml::Shape{10, 20}), (std::pair<ml::Index, ml::Index>{20, 10}));
  EXPECT_THROW(nn::init::fans(ml::Shape{5}), ml::ShapeError);
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain(nn::init::Nonlinearity::kReLU), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain(nn::init::Nonlinearity::kTanh), 5.0 / 3.0);
}

TEST(Init, BoundsAndStatistics) {
  ml::Generator gen(1);
  auto w = ml::zeros<double>(ml::Shape{200, 100});
  nn::init::xavier_uniform(w, gen);
  const double a = std::sqrt(6.0 / 300.0);
  EXPECT_LE(max_abs(w), a);
  EXPECT_GT(max_abs(w), 0.95 * a);
  nn::init::kaiming_uniform(w, gen, std::sqrt(5.0));
  EXPECT_LE(max_abs(w), 1.0 / std::sqrt(100.0) + 1e-15);
  nn::init::kaiming_normal(w, gen, 0.0, nn::init::FanMode::kFanIn, nn::init::Nonlinearity::kReLU);
  auto [m, s] = mean_std(w);
  EXPECT_NEAR(m, 0.0, 0.005);
  EXPECT_NEAR(s, std::sqrt(2.0 / 100.0), 0.005);
  nn::init::xavier_normal(w, gen, 2.0);
  std::tie(m, s) = mean_std(w);
  EXPECT_NEAR(s, 2.0 * std::sqrt(2.0 / 300.0), 0.003);
  nn::init::normal(w, gen, 3.0, 0.5);
  std::tie(m, s) = mean_std(w);
  EXPECT_NEAR(m, 3.0, 0.01);
  EXPECT_NEAR(s, 0.5, 0.01);
  nn::init::constant(w, 0.25);
  EXPECT_EQ(w.data()[17], 0.25);
  auto nonleaf = ml::mul_scalar(ml::ones<double>(ml::Shape{2, 2}).requires_grad(true), 1.0);
  EXPECT_THROW(nn::init::uniform(nonleaf, gen), ml::ValueError);
}

TEST(Init, SameSeedSameValues) {
  ml::Generator g1(5), g2(5);
  auto a = ml::zeros<float>(ml::Shape{8, 8});
  auto b = ml::zeros<float>(ml::Shape{8, 8});
  nn::init::kaiming_uniform(a, g1);
  nn::init::kaiming_uniform(b, g2);
  EXPECT_EQ(a.to_vector(), b.to_vector());
}

TEST(Init, LayerDefaultsFollowFanIn) {
  ml::Generator gen(2);
  nn::Linear<double> fc(50, 30, gen);
  EXPECT_LE(max_abs(fc.weight()), 1.0 / std::sqrt(50.0));
  EXPECT_LE(max_abs(fc.bias()), 1.0 / std::sqrt(50.0));
  nn::Conv2d<double> conv(4, 8, 3, gen);
  auto p = conv.named_parameters();
  EXPECT_LE(max_abs(p.at("weight")), 1.0 / std::sqrt(36.0));
  EXPECT_LE(max_abs(p.at("bias")), 1.0 / std::sqrt(36.0));
  EXPECT_GT(max_abs(p.at("weight")), 0.8 / std::sqrt(36.0));
  nn::BatchNorm2d<double> bn(4);
  EXPECT_EQ(bn.named_parameters().at("weight").to_vector(), std::vector<double>(4, 1.0));
  EXPECT_EQ(bn.named_parameters().at("bias").to_vector(), std::vector<double>(4, 0.0));
}
