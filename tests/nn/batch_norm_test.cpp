// BatchNorm modes behave as documented.

#include <gtest/gtest.h>

#include <thread>

#include <cmath>
#include <metalearn/autograd.hpp>
#include <metalearn/nn.hpp>

#include "support/intra_op.hpp"

namespace ml = metalearn;
namespace mt = metalearn::testing;
namespace nn = metalearn::nn;

namespace {

// Per-channel mean and biased variance of y [N, C, H, W].
std::pair<std::vector<double>, std::vector<double>> channel_stats(const ml::Tensor<double>& y) {
  const ml::Index n = y.size(0), c = y.size(1), hw = y.size(2) * y.size(3);
  std::vector<double> m(static_cast<std::size_t>(c), 0.0), v(static_cast<std::size_t>(c), 0.0);
  for (ml::Index k = 0; k < c; ++k) {
    double s = 0, s2 = 0;
    for (ml::Index i = 0; i < n; ++i) {
      for (ml::Index j = 0; j < hw; ++j) {
        const double val = y.data()[(i * c + k) * hw + j];
        s += val;
        s2 += val * val;
      }
    }
    const double cnt = static_cast<double>(n * hw);
    m[static_cast<std::size_t>(k)] = s / cnt;
    v[static_cast<std::size_t>(k)] = s2 / cnt - (s / cnt) * (s / cnt);
  }
  return {m, v};
}

}  // namespace

TEST(BatchNorm, TransductiveUsesBatchStatisticsAlways) {
  ml::Generator gen(1);
  nn::BatchNorm2d<double> bn(3);
  EXPECT_EQ(bn.named_buffers().size(), 0u);
  EXPECT_FALSE(bn.running_mean().defined());
  auto x = ml::add_scalar(ml::mul_scalar(ml::randn<double>(ml::Shape{4, 3, 2, 2}, gen), 3.0), 5.0);
  for (bool training : {true, false}) {
    bn.train(training);
    auto [m, v] = channel_stats(bn.forward(x));
    for (int k = 0; k < 3; ++k) {
      EXPECT_NEAR(m[static_cast<std::size_t>(k)], 0.0, 1e-12);
      EXPECT_NEAR(v[static_cast<std::size_t>(k)], 1.0, 1e-4);
    }
  }
}

TEST(BatchNorm, RunningModeUpdatesAndUsesRunningStatistics) {
  ml::Generator gen(2);
  nn::BatchNorm2d<double> bn(
      2, nn::BatchNormOptions{.mode = nn::BatchNormMode::kRunning, .momentum = 0.25});
  EXPECT_EQ(bn.named_buffers().names(), (std::vector<std::string>{"running_mean", "running_var"}));
  auto x = ml::add_scalar(ml::randn<double>(ml::Shape{3, 2, 2, 2}, gen), 2.0);
  auto [bm, bv] = channel_stats(x);
  const double unbias = 12.0 / 11.0;
  bn.forward(x);  // training: batch statistics, one update
  for (int k = 0; k < 2; ++k) {
    const auto kk = static_cast<std::size_t>(k);
    EXPECT_NEAR(bn.running_mean().data()[k], 0.25 * bm[kk], 1e-12);
    EXPECT_NEAR(bn.running_var().data()[k], 0.75 + 0.25 * bv[kk] * unbias, 1e-12);
  }
  bn.eval();
  const auto rm = bn.running_mean().to_vector();
  const auto rv = bn.running_var().to_vector();
  auto y = bn.forward(x);
  EXPECT_EQ(bn.running_mean().to_vector(), rm);  // no update in evaluation
  for (ml::Index i = 0; i < x.numel(); ++i) {
    const auto k = static_cast<std::size_t>((i / 4) % 2);
    EXPECT_NEAR(y.data()[i], (x.data()[i] - rm[k]) / std::sqrt(rv[k] + 1e-5), 1e-12);
  }
}

TEST(BatchNorm, PerStepModeSelectsTheRowOfTheStep) {
  ml::Generator gen(3);
  nn::BatchNorm2d<double> bn(2,
                             nn::BatchNormOptions{.mode = nn::BatchNormMode::kPerStep, .steps = 3});
  auto p = bn.named_parameters();
  EXPECT_EQ(p.at("weight").shape(), (ml::Shape{3, 2}));
  EXPECT_EQ(bn.running_mean().shape(), (ml::Shape{3, 2}));
  auto x = ml::randn<double>(ml::Shape{4, 2, 2, 2}, gen);
  // Without a step index the forward pass refuses to guess.
  EXPECT_THROW(bn.forward(x), ml::ValueError);
  {
    const nn::ForwardScope step3({.step = 3});
    EXPECT_THROW(bn.forward(x, p), ml::ValueError);
  }
  // Step 1 uses row 1 of weight/bias and updates only row 1 of the running stats.
  auto w = ml::from_vector<double>({1, 1, 2, 3, 1, 1}, ml::Shape{3, 2});
  auto b = ml::from_vector<double>({0, 0, -1, 4, 0, 0}, ml::Shape{3, 2});
  nn::ParamDict<double> fast{{"weight", w}, {"bias", b}};
  const auto step1 = [&] {
    const nn::ForwardScope scope({.step = 1});
    return bn.forward(x, fast);
  };
  auto y = step1();
  auto ref = nn::functional::batch_norm<double>(x, ml::from_vector<double>({2, 3}),
                                                ml::from_vector<double>({-1, 4}),
                                                ml::Tensor<double>(), ml::Tensor<double>(), true);
  for (ml::Index i = 0; i < y.numel(); ++i) EXPECT_NEAR(y.data()[i], ref.data()[i], 1e-12);
  const auto rm = bn.running_mean().to_vector();
  EXPECT_EQ(rm[0], 0.0);
  EXPECT_EQ(rm[1], 0.0);
  EXPECT_NE(rm[2], 0.0);
  EXPECT_NE(rm[3], 0.0);
  EXPECT_EQ(rm[4], 0.0);
  EXPECT_EQ(rm[5], 0.0);
  // Evaluation uses the running statistics of the step.
  bn.eval();
  auto ye = step1();
  const auto rv = bn.running_var().to_vector();
  EXPECT_NEAR(ye.data()[0], 2.0 * (x.data()[0] - rm[2]) / std::sqrt(rv[2] + 1e-5) - 1.0, 1e-12);
}

TEST(BatchNorm, PerStepStepReachesNestedModulesOfThisThread) {
  ml::Generator gen(4);
  auto bn_opts = nn::BatchNormOptions{.mode = nn::BatchNormMode::kPerStep, .steps = 2};
  nn::ConvNet4<float> net(nn::ConvNet4Options{.hidden = 4, .ways = 2, .batch_norm = bn_opts}, gen);
  auto x = ml::randn<float>(ml::Shape{2, 1, 28, 28}, gen);
  EXPECT_THROW(net.forward(x), ml::ValueError);
  auto p = net.named_parameters();
  EXPECT_EQ(p.at("features.1.weight").shape(), (ml::Shape{2, 4}));
  for (int k : {0, 1}) {
    const nn::ForwardScope scope({.step = k});
    EXPECT_EQ(net.forward(x, p).shape(), (ml::Shape{2, 2}));
    // The scope belongs to this thread: a forward pass on another thread has no step.
    std::thread other([&] { EXPECT_THROW(net.forward(x, p), ml::ValueError); });
    other.join();
  }
  // Scopes nest, and the outer step comes back when the inner one ends.
  const nn::ForwardScope outer({.step = 1});
  {
    const nn::ForwardScope inner({.step = 0});
    EXPECT_EQ(nn::forward_context().step, 0);
  }
  EXPECT_EQ(nn::forward_context().step, 1);
}

TEST(BatchNorm, FunctionalChecks) {
  auto x = ml::zeros<double>(ml::Shape{2, 3});
  EXPECT_THROW(
      nn::functional::batch_norm<double>(x, ml::ones<double>(ml::Shape{2}), {}, {}, {}, true),
      ml::ShapeError);
  EXPECT_THROW(nn::functional::batch_norm<double>(x, {}, {}, {}, {}, false), ml::ValueError);
  EXPECT_THROW(
      nn::functional::batch_norm<double>(ml::zeros<double>(ml::Shape{3}), {}, {}, {}, {}, true),
      ml::ShapeError);
  nn::BatchNorm2d<double> bn(3);
  EXPECT_THROW(bn.forward(x), ml::ShapeError);
  nn::BatchNorm1d<double> bn1(3);
  EXPECT_EQ(bn1.forward(ml::randn<double>(ml::Shape{4, 3, 5}, *std::make_unique<ml::Generator>(1)))
                .shape(),
            (ml::Shape{4, 3, 5}));
}

// In float, the fused backward (no graph recorded) agrees with the float64
// gradient: its partial sums keep float rounding small.
TEST(BatchNorm, FusedFloatBackwardAgreesWithDouble) {
  namespace F = metalearn::nn::functional;
  ml::Generator gen(31);
  // A mean large against the spread: the backward must not cancel it away.
  auto xd = ml::add_scalar(ml::mul_scalar(ml::randn<double>({6, 4, 7, 7}, gen), 0.5), 40.0);
  auto gd = ml::randn<double>({6, 4, 7, 7}, gen);
  auto wd = ml::randn<double>({4}, gen);
  auto bd = ml::randn<double>({4}, gen);
  auto to_float = [](const ml::Tensor<double>& t) {
    std::vector<float> v;
    for (const double d : t.to_vector()) v.push_back(static_cast<float>(d));
    return ml::from_vector<float>(v, t.shape());
  };
  auto run = [&](auto x, auto g, auto w, auto b) {
    x = x.requires_grad(true);
    w = w.requires_grad(true);
    b = b.requires_grad(true);
    using TT = decltype(x);
    using S = typename TT::value_type;
    auto y = F::batch_norm(x, w, b, TT(), TT(), true, S(0.1), S(1e-5));
    return ml::autograd::grad({ml::sum(ml::mul(y, g))}, {x, w, b});
  };
  const auto ref = run(xd, gd, wd, bd);
  const auto got = run(to_float(xd), to_float(gd), to_float(wd), to_float(bd));
  for (std::size_t k = 0; k < ref.size(); ++k) {
    const auto r = ref[k].to_vector();
    const auto f = got[k].to_vector();
    ASSERT_EQ(r.size(), f.size());
    for (std::size_t i = 0; i < r.size(); ++i) {
      EXPECT_NEAR(f[i], r[i], 1e-4 * (1.0 + std::abs(r[i]))) << "input " << k << " element " << i;
    }
  }
}

// Under an IntraOpScope the channels of a batch norm (forward, the fused backward and
// the differentiable one) and the planes of a max-pool spread over the pool; every
// value must be the one a single thread computes.
TEST(BatchNorm, IntraOpPoolGivesTheBitsOfOneThread) {
  ml::Generator gen(41);
  const auto x0 = ml::randn<float>({20, 16, 12, 12}, gen);  // above the parallel threshold
  const auto w = ml::uniform<float>({16}, gen, 0.5f, 1.5f).requires_grad(true);
  const auto b = ml::randn<float>({16}, gen).requires_grad(true);
  mt::expect_intra_op_pool_bits<float>([&](mt::ValueRecord<float>& record) {
    auto x = x0.clone().requires_grad(true);
    auto y = ml::max_pool2d(
        nn::functional::batch_norm(x, w, b, ml::Tensor<float>(), ml::Tensor<float>(), true), 2);
    record(y);
    const auto loss = ml::sum(ml::square(y));
    for (const auto& g : ml::autograd::grad({loss}, {x, w, b}, {.retain_graph = true}))
      record(g);  // the fused backward
    const auto g = ml::autograd::grad({loss}, {x, w, b}, {.create_graph = true});
    for (const auto& t : g) record(t);
    record(ml::autograd::grad({ml::sum(g[0])}, {w})[0]);  // a second derivative
  });
}
