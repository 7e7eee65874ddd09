// Optimizers against golden values on a quadratic, state save/restore, schedules.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <metalearn/nn.hpp>
#include <metalearn/optim.hpp>

#include "reference/optim_reference.hpp"

namespace ml = metalearn;
namespace ref = metalearn::testing::optim_reference;

namespace {

ml::Tensor<double> matrix_a() {
  std::vector<double> v;
  for (const auto& row : ref::kA) v.insert(v.end(), row, row + 3);
  return ml::from_vector<double>(v, ml::Shape{3, 3});
}

// f(x) = 0.5 x^T A x - b^T x, gradient A x - b; accumulates into x.grad().
void quadratic_backward(const ml::Tensor<double>& x) {
  auto a = matrix_a();
  auto b = ml::from_vector<double>({ref::kB[0], ref::kB[1], ref::kB[2]});
  auto ax = ml::reshape(ml::matmul(a, ml::reshape(x, ml::Shape{3, 1})), ml::Shape{3});
  auto loss = ml::sub(ml::mul_scalar(ml::sum(ml::mul(x, ax)), 0.5), ml::sum(ml::mul(b, x)));
  loss.backward();
}

ml::Tensor<double> start() {
  return ml::from_vector<double>({ref::kX0[0], ref::kX0[1], ref::kX0[2]}).requires_grad(true);
}

using Factory = std::function<std::unique_ptr<ml::optim::Optimizer<double>>(ml::Tensor<double>)>;

void expect_trajectory(const Factory& make, const double (&expected)[ref::kSteps][3]) {
  auto x = start();
  auto opt = make(x);
  for (int s = 0; s < ref::kSteps; ++s) {
    opt->zero_grad();
    quadratic_backward(x);
    opt->step();
    for (int i = 0; i < 3; ++i) {
      EXPECT_NEAR(x.data()[i], expected[s][i], 1e-6) << "step " << s << " coordinate " << i;
    }
  }
  EXPECT_EQ(opt->step_count(), ref::kSteps);
}

}  // namespace

TEST(OptimReference, SgdPlain) {
  expect_trajectory(
      [](ml::Tensor<double> x) {
        return std::make_unique<ml::optim::SGD<double>>(std::vector{x},
                                                        ml::optim::SGDOptions{.lr = 0.1});
      },
      ref::kSgdPlain);
}

TEST(OptimReference, SgdFirstStepIsClosedForm) {
  // x1 = x0 - lr (A x0 - b), written out by hand.
  auto x = start();
  ml::optim::SGD<double> opt({x}, ml::optim::SGDOptions{.lr = 0.1});
  quadratic_backward(x);
  opt.step();
  for (int i = 0; i < 3; ++i) {
    double g = -ref::kB[i];
    for (int j = 0; j < 3; ++j) g += ref::kA[i][j] * ref::kX0[j];
    EXPECT_NEAR(x.data()[i], ref::kX0[i] - 0.1 * g, 1e-15);
  }
}

TEST(OptimReference, SgdMomentum) {
  expect_trajectory(
      [](ml::Tensor<double> x) {
        return std::make_unique<ml::optim::SGD<double>>(
            std::vector{x}, ml::optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
      },
      ref::kSgdMomentum);
}

TEST(OptimReference, SgdDampeningWeightDecay) {
  expect_trajectory(
      [](ml::Tensor<double> x) {
        return std::make_unique<ml::optim::SGD<double>>(
            std::vector{x},
            ml::optim::SGDOptions{
                .lr = 0.05, .momentum = 0.8, .dampening = 0.3, .weight_decay = 0.01});
      },
      ref::kSgdDampening);
}

TEST(OptimReference, SgdNesterov) {
  expect_trajectory(
      [](ml::Tensor<double> x) {
        return std::make_unique<ml::optim::SGD<double>>(
            std::vector{x},
            ml::optim::SGDOptions{
                .lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
      },
      ref::kSgdNesterov);
}

TEST(OptimReference, Adam) {
  expect_trajectory(
      [](ml::Tensor<double> x) {
        return std::make_unique<ml::optim::Adam<double>>(std::vector{x},
                                                         ml::optim::AdamOptions{.lr = 0.1});
      },
      ref::kAdam);
}

TEST(OptimReference, AdamFirstStepMovesByLr) {
  // With bias correction the first Adam step is lr * sign(g) (up to eps).
  auto x = start();
  ml::optim::Adam<double> opt({x}, ml::optim::AdamOptions{.lr = 0.1});
  quadratic_backward(x);
  const auto g = x.grad().to_vector();
  opt.step();
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(x.data()[i], ref::kX0[i] - 0.1 * (g[static_cast<std::size_t>(i)] > 0 ? 1 : -1),
                1e-8);
  }
}

TEST(OptimReference, AdamWeightDecay) {
  expect_trajectory(
      [](ml::Tensor<double> x) {
        return std::make_unique<ml::optim::Adam<double>>(
            std::vector{x},
            ml::optim::AdamOptions{.lr = 0.1, .beta1 = 0.8, .beta2 = 0.99, .weight_decay = 0.1});
      },
      ref::kAdamWeightDecay);
}

TEST(OptimReference, AdamW) {
  expect_trajectory(
      [](ml::Tensor<double> x) {
        return std::make_unique<ml::optim::AdamW<double>>(
            std::vector{x}, ml::optim::AdamOptions{.lr = 0.1, .weight_decay = 0.1});
      },
      ref::kAdamW);
}

TEST(Optimizer, SkipsParametersWithoutGradAndZeroGradClears) {
  auto x = start();
  auto y = ml::from_vector<double>({1.0, 2.0}).requires_grad(true);
  ml::optim::Adam<double> opt({x, y}, ml::optim::AdamOptions{.lr = 0.1});
  quadratic_backward(x);
  opt.step();
  EXPECT_EQ(y.to_vector(), (std::vector<double>{1.0, 2.0}));
  EXPECT_TRUE(x.grad().defined());
  opt.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  // No buffers were created for y.
  EXPECT_EQ(opt.state().buffers.size(), 2u);
}

TEST(Optimizer, RejectsNonLeafAndBadOptions) {
  auto x = start();
  auto nonleaf = ml::mul_scalar(x, 2.0);
  EXPECT_THROW(ml::optim::SGD<double>({nonleaf}, ml::optim::SGDOptions{.lr = 0.1}), ml::ValueError);
  EXPECT_THROW(ml::optim::SGD<double>({x}, ml::optim::SGDOptions{.lr = -1.0}), ml::ValueError);
  EXPECT_THROW(ml::optim::SGD<double>({x}, ml::optim::SGDOptions{.lr = 0.1, .nesterov = true}),
               ml::ValueError);
  EXPECT_THROW(
      ml::optim::Adam<double>({x}, ml::optim::AdamOptions{.lr = 0.1, .beta1 = 1.0, .beta2 = 0.9}),
      ml::ValueError);
}

TEST(Optimizer, SetLrChangesTheNextStep) {
  auto x = start();
  ml::optim::SGD<double> opt({x}, ml::optim::SGDOptions{.lr = 0.1});
  opt.set_lr(0.0);
  quadratic_backward(x);
  opt.step();
  EXPECT_EQ(x.data()[0], ref::kX0[0]);
  opt.set_lr(0.1);
  opt.step();
  EXPECT_NEAR(x.data()[0], ref::kSgdPlain[0][0], 1e-15);
  EXPECT_THROW(opt.set_lr(-0.5), ml::ValueError);
}

template <class Opt, class Options>
void check_state_roundtrip(const Options& options) {
  ml::Generator gen(3);
  ml::nn::MLP<float> model({2, 8, 1}, gen);
  auto x = ml::randn<float>(ml::Shape{16, 2}, gen);
  auto y = ml::randn<float>(ml::Shape{16, 1}, gen);
  auto train = [&](ml::nn::MLP<float>& m, Opt& opt, int steps) {
    for (int s = 0; s < steps; ++s) {
      opt.zero_grad();
      ml::mse_loss(m.forward(x), y).backward();
      opt.step();
    }
  };
  Opt opt(model, options);
  train(model, opt, 3);
  const auto saved = opt.state();
  auto copy = model.deep_copy();
  train(model, opt, 4);

  Opt restored(*copy, options);
  restored.load_state(saved);
  EXPECT_EQ(restored.step_count(), 3);
  train(*copy, restored, 4);
  const auto a = model.parameters();
  const auto b = copy->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(std::memcmp(a[i].data(), b[i].data(),
                          sizeof(float) * static_cast<std::size_t>(a[i].numel())),
              0)
        << "parameter " << i << " differs after restoring the state";
  }
}

TEST(OptimizerState, AdamRestoresBitExactly) {
  check_state_roundtrip<ml::optim::Adam<float>>(ml::optim::AdamOptions{.lr = 0.01});
}
TEST(OptimizerState, AdamWRestoresBitExactly) {
  check_state_roundtrip<ml::optim::AdamW<float>>(ml::optim::AdamOptions{.lr = 0.01});
}
TEST(OptimizerState, SgdMomentumRestoresBitExactly) {
  check_state_roundtrip<ml::optim::SGD<float>>(ml::optim::SGDOptions{.lr = 0.05, .momentum = 0.9});
}

TEST(OptimizerState, StateIsADeepCopyAndForeignStateIsRejected) {
  auto x = start();
  ml::optim::Adam<double> opt({x}, ml::optim::AdamOptions{.lr = 0.1});
  quadratic_backward(x);
  opt.step();
  auto s = opt.state();
  ASSERT_TRUE(s.buffers.contains("0.exp_avg"));
  ASSERT_TRUE(s.buffers.contains("0.exp_avg_sq"));
  EXPECT_EQ(s.step, 1);
  const double before = s.buffers.at("0.exp_avg").data()[0];
  opt.step();
  EXPECT_EQ(s.buffers.at("0.exp_avg").data()[0], before);

  ml::optim::SGD<double> sgd({x}, ml::optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
  EXPECT_THROW(sgd.load_state(s), ml::ValueError);
  auto y = ml::zeros<double>(ml::Shape{2}).requires_grad(true);
  ml::optim::Adam<double> other({y}, ml::optim::AdamOptions{.lr = 0.1});
  EXPECT_THROW(other.load_state(s), ml::ShapeError);
}

TEST(Schedule, ConstantStepCosine) {
  ml::optim::ConstantLr c(0.3);
  EXPECT_EQ(c.lr(0), 0.3);
  EXPECT_EQ(c.lr(1000), 0.3);
  ml::optim::StepLr st(1.0, 10, 0.5);
  EXPECT_DOUBLE_EQ(st.lr(0), 1.0);
  EXPECT_DOUBLE_EQ(st.lr(9), 1.0);
  EXPECT_DOUBLE_EQ(st.lr(10), 0.5);
  EXPECT_DOUBLE_EQ(st.lr(25), 0.25);
  ml::optim::CosineLr cos(1.0, 100, 0.1);
  EXPECT_DOUBLE_EQ(cos.lr(0), 1.0);
  EXPECT_NEAR(cos.lr(50), 0.55, 1e-12);
  EXPECT_NEAR(cos.lr(25), 0.1 + 0.9 * 0.5 * (1.0 + std::sqrt(0.5)), 1e-12);
  EXPECT_DOUBLE_EQ(cos.lr(100), 0.1);
  EXPECT_DOUBLE_EQ(cos.lr(500), 0.1);
  EXPECT_THROW(ml::optim::StepLr(1.0, 0), ml::ValueError);
  EXPECT_THROW(ml::optim::CosineLr(1.0, 0), ml::ValueError);
}

TEST(Schedule, ApplyScheduleFollowsStepCount) {
  auto x = start();
  ml::optim::SGD<double> opt({x}, ml::optim::SGDOptions{.lr = 1.0});
  ml::optim::StepLr st(1.0, 2, 0.5);
  std::vector<double> seen;
  for (int s = 0; s < 5; ++s) {
    ml::optim::apply_schedule(opt, st);
    seen.push_back(opt.lr());
    opt.step();
  }
  EXPECT_EQ(seen, (std::vector<double>{1.0, 1.0, 0.5, 0.5, 0.25}));
}

TEST(Optimizer, DeducesScalarFromModuleAndTrains) {
  ml::Generator gen(4);
  ml::nn::MLP model({1, 16, 1}, gen);
  ml::optim::Adam opt(model, ml::optim::AdamOptions{.lr = 1e-2});
  static_assert(std::is_same_v<decltype(opt), ml::optim::Adam<float>>);
  auto x = ml::randn<float>(ml::Shape{32, 1}, gen);
  auto y = ml::tanh(ml::mul_scalar(x, 2.0f));
  const float before = ml::mse_loss(model.forward(x), y).item();
  for (int s = 0; s < 200; ++s) {
    opt.zero_grad();
    ml::mse_loss(model.forward(x), y).backward();
    opt.step();
  }
  EXPECT_LT(ml::mse_loss(model.forward(x), y).item(), 0.2f * before);
}

// The updates are elementwise loops that the compiler vectorises (and, for Adam's
// square root, explicit vector instructions): a value must move exactly as it does
// alone, in a one-value parameter that only the scalar code touches, whatever its
// place in a long parameter (vector bodies, chunk boundaries, scalar rests).
template <class Opt, class T, class Options>
void expect_same_update_alone_and_in_bulk(const Options& options) {
  constexpr ml::Index kN = 1100;
  ml::Generator gen(41);
  const auto start_values = ml::randn<T>({kN}, gen).to_vector();
  auto bulk = ml::from_vector<T>(start_values, ml::Shape{kN}).requires_grad(true);
  std::vector<ml::Tensor<T>> alone;
  for (T v : start_values)
    alone.push_back(ml::from_vector<T>({v}, ml::Shape{1}).requires_grad(true));
  Opt a(std::vector{bulk}, options);
  Opt b(alone, options);
  for (int step = 0; step < 3; ++step) {
    const auto g = ml::randn<T>({kN}, gen).to_vector();
    bulk.set_grad(ml::from_vector<T>(g, ml::Shape{kN}));
    for (std::size_t i = 0; i < alone.size(); ++i)
      alone[i].set_grad(ml::from_vector<T>({g[i]}, ml::Shape{1}));
    a.step();
    b.step();
  }
  for (std::size_t i = 0; i < alone.size(); ++i) {
    ASSERT_EQ(bulk.data()[i], alone[i].data()[0]) << "value " << i;
    ASSERT_NE(bulk.data()[i], start_values[i]) << "value " << i;
  }
}

TEST(OptimizerUpdate, EveryValueMovesAsItDoesAlone) {
  using ml::optim::Adam;
  using ml::optim::AdamOptions;
  using ml::optim::AdamW;
  using ml::optim::SGD;
  using ml::optim::SGDOptions;
  expect_same_update_alone_and_in_bulk<Adam<float>, float>(AdamOptions{.lr = 0.01});
  expect_same_update_alone_and_in_bulk<Adam<double>, double>(AdamOptions{.lr = 0.01});
  expect_same_update_alone_and_in_bulk<Adam<float>, float>(
      AdamOptions{.lr = 0.01, .weight_decay = 0.1});
  expect_same_update_alone_and_in_bulk<AdamW<float>, float>(AdamOptions{.lr = 0.01});
  expect_same_update_alone_and_in_bulk<SGD<float>, float>(SGDOptions{.lr = 0.05});
  expect_same_update_alone_and_in_bulk<SGD<double>, double>(SGDOptions{.lr = 0.05});
  expect_same_update_alone_and_in_bulk<SGD<float>, float>(
      SGDOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01});
}

// step(grads) is step() without .grad(): the same update from the same values, an
// undefined entry leaves its parameter alone, and a wrong count or shape throws
// before any parameter changes.
TEST(OptimizerGivenGradients, EqualsStepFromGradAndChecksFirst) {
  ml::Generator gen(5);
  const auto make = [&] {
    ml::Generator g(6);
    return std::vector<ml::Tensor<double>>{ml::randn<double>({3, 2}, g).requires_grad(true),
                                           ml::randn<double>({4}, g).requires_grad(true)};
  };
  const std::vector<ml::Tensor<double>> grads{ml::randn<double>({3, 2}, gen),
                                              ml::randn<double>({4}, gen)};
  for (int kind = 0; kind < 2; ++kind) {
    auto a = make();
    auto b = make();
    std::unique_ptr<ml::optim::Optimizer<double>> by_grad, given;
    if (kind == 0) {
      by_grad = std::make_unique<ml::optim::Adam<double>>(a, ml::optim::AdamOptions{.lr = 0.1});
      given = std::make_unique<ml::optim::Adam<double>>(b, ml::optim::AdamOptions{.lr = 0.1});
    } else {
      by_grad = std::make_unique<ml::optim::SGD<double>>(
          a, ml::optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
      given = std::make_unique<ml::optim::SGD<double>>(
          b, ml::optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
    }
    for (int step = 0; step < 3; ++step) {
      for (std::size_t i = 0; i < a.size(); ++i) a[i].set_grad(grads[i]);
      by_grad->step();
      given->step(grads);
    }
    for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].to_vector(), b[i].to_vector());
    EXPECT_EQ(given->step_count(), 3);

    const auto before0 = b[0].to_vector();
    const auto before1 = b[1].to_vector();
    given->step({grads[0], ml::Tensor<double>()});  // the second parameter is left alone
    EXPECT_NE(b[0].to_vector(), before0);
    EXPECT_EQ(b[1].to_vector(), before1);

    const auto now0 = b[0].to_vector();
    EXPECT_THROW(given->step({grads[0]}), ml::ValueError);
    EXPECT_THROW(given->step({grads[0], ml::zeros<double>({5})}), ml::ShapeError);
    EXPECT_EQ(b[0].to_vector(), now0);  // the first, well-shaped gradient was not applied
    EXPECT_EQ(given->step_count(), 4);
  }
}
