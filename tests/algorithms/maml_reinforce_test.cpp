// Optimisation-based meta-RL through the environment families: MAML with a
// policy-gradient (REINFORCE) inner loss on Bernoulli bandits (Finn et al. 2017, sec. 3.3).
//
// Each task of a meta-batch is one bandit of env::BernoulliBandits; its trial of 2n pulls
// is stepped in one env::EnvBatch with the other tasks'. The first n pulls come from the
// policy at the meta-parameters and give the inner loss; the last n come from the
// adapted policy and give the query loss, differentiated through the inner step by
// Maml::clone() / meta_gradient_of(). Like the reference, the estimator holds the
// sampled pulls fixed: it differentiates the surrogate, not the sampling distribution.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <metalearn/algorithms/maml/maml.hpp>
#include <metalearn/env/bandit.hpp>
#include <metalearn/env/distributions.hpp>
#include <metalearn/env/evaluate.hpp>
#include <metalearn/nn/modules/mlp.hpp>
#include <numeric>
#include <vector>

#include "support/gradients.hpp"

namespace {

namespace ml = metalearn;
namespace alg = metalearn::algorithms;
namespace me = metalearn::env;
using metalearn::testing::relative_error;

constexpr ml::Index kArms = 5;
constexpr ml::Index kPulls = 20;  // per phase: n support pulls, then n query pulls
constexpr ml::Index kTasks = 8;
constexpr std::uint64_t kSeed = 3;

// The pulls of one phase of one task: the actions and, as REINFORCE weights, the rewards
// less the phase's mean reward (a constant baseline).
struct Phase {
  ml::Labels actions;
  std::vector<double> rewards;
  [[nodiscard]] std::vector<double> advantages() const {
    const double mean =
        std::accumulate(rewards.begin(), rewards.end(), 0.0) / static_cast<double>(rewards.size());
    std::vector<double> a(rewards.size());
    std::transform(rewards.begin(), rewards.end(), a.begin(), [&](double r) { return r - mean; });
    return a;
  }
};

struct BanditTask {
  std::vector<double> probabilities;  // the bandit's arm means, for exact expectations
  Phase support;
  Phase query;
};

// A bandit has one observation: the policy's input is its one-hot code, a column of ones.
ml::Tensor<double> observations(ml::Index n) {
  return ml::ones<double>({n, 1});
}

std::vector<double> softmax_row(const ml::Tensor<double>& logits) {
  std::vector<double> p(logits.data(), logits.data() + logits.numel());
  const double top = *std::max_element(p.begin(), p.end());
  double total = 0;
  for (double& v : p) total += v = std::exp(v - top);
  for (double& v : p) v /= total;
  return p;
}

// The expected reward of one pull under `policy` on a bandit with arm means `p`.
double expected_reward(const alg::Maml<double>::Learner& policy, const std::vector<double>& p) {
  const std::vector<double> pi = softmax_row(policy(observations(1)));
  return std::inner_product(pi.begin(), pi.end(), p.begin(), 0.0);
}

// n pulls of every environment of `batch`, task i's actions drawn from learners[i]'s policy
// with gens[i].
std::vector<Phase> pull(me::EnvBatch<me::BernoulliBandit>& batch,
                        const std::vector<alg::Maml<double>::Learner>& learners,
                        std::vector<ml::Generator>& gens) {
  std::vector<std::vector<double>> pi;
  for (const auto& l : learners) pi.push_back(softmax_row(l(observations(1))));
  std::vector<Phase> phases(learners.size());
  std::vector<ml::Index> actions(learners.size());
  for (ml::Index t = 0; t < kPulls; ++t) {
    for (std::size_t i = 0; i < learners.size(); ++i) {
      actions[i] = me::sample_categorical(gens[i], pi[i]);
      phases[i].actions.push_back(actions[i]);
    }
    const me::BatchStep& step = batch.step(actions);
    for (std::size_t i = 0; i < learners.size(); ++i) phases[i].rewards.push_back(step.rewards[i]);
  }
  return phases;
}

struct MetaBatch {
  std::vector<BanditTask> tasks;
  ml::Tensor<double> query_loss;  // the sum over the tasks, differentiable
  double support_reward = 0;      // mean exact expected reward before adaptation
  double adapted_reward = 0;      // ... and after the inner step
};

// One meta-batch of bandits of meta-step `step`: sampled through the family, adapted with
// the REINFORCE inner loss, and scored on the adapted policy's own pulls.
MetaBatch collect(const alg::Maml<double>& maml, std::int64_t step) {
  const me::BernoulliBandits family({.arms = kArms, .pulls = 2 * kPulls});
  const auto first = static_cast<std::uint64_t>(step * kTasks);
  me::EnvBatch<me::BernoulliBandit> batch =
      me::make_batch(family, kSeed, me::Split::kTrain, first, kTasks);
  MetaBatch out;
  std::vector<alg::Maml<double>::Learner> learners;
  std::vector<ml::Generator> gens;
  for (ml::Index i = 0; i < kTasks; ++i) {
    const auto index = first + static_cast<std::uint64_t>(i);
    out.tasks.push_back({family.make(kSeed, me::Split::kTrain, index).probabilities(), {}, {}});
    learners.push_back(maml.clone());
    gens.emplace_back(me::agent_seed(kSeed, me::Split::kTrain, index));
  }
  batch.reset();
  const std::vector<Phase> support = pull(batch, learners, gens);
  for (std::size_t i = 0; i < learners.size(); ++i) {
    BanditTask& task = out.tasks[i];
    task.support = support[i];
    out.support_reward += expected_reward(learners[i], task.probabilities) / kTasks;
    learners[i].adapt(ml::policy_gradient_loss(learners[i](observations(kPulls)),
                                               task.support.actions, task.support.advantages()));
    out.adapted_reward += expected_reward(learners[i], task.probabilities) / kTasks;
  }
  const std::vector<Phase> query = pull(batch, learners, gens);
  for (std::size_t i = 0; i < learners.size(); ++i) {
    out.tasks[i].query = query[i];
    ml::Tensor<double> q = ml::policy_gradient_loss(learners[i](observations(kPulls)),
                                                    query[i].actions, query[i].advantages());
    out.query_loss = out.query_loss.defined() ? ml::add(out.query_loss, q) : q;
  }
  return out;
}

// The summed query loss of `tasks` at the current meta-parameters, the pulls held fixed.
double meta_objective(const alg::Maml<double>& maml, const std::vector<BanditTask>& tasks) {
  double total = 0;
  for (const BanditTask& task : tasks) {
    auto learner = maml.clone();
    learner.adapt(ml::policy_gradient_loss(learner(observations(kPulls)), task.support.actions,
                                           task.support.advantages()));
    total += ml::policy_gradient_loss(learner(observations(kPulls)), task.query.actions,
                                      task.query.advantages())
                 .item();
  }
  return total;
}

std::vector<double> flat(const alg::MetaGradient<double>& g) {
  std::vector<double> out;
  for (const auto& [name, t] : g.sum) out.insert(out.end(), t.data(), t.data() + t.numel());
  return out;
}

}  // namespace

TEST(MamlReinforce, OneMetaStepOnBanditsDifferentiatesThroughThePolicyGradientStep) {
  ml::Generator gen(7);
  ml::nn::MLP<double> policy({1, 8, kArms}, gen, ml::nn::Activation::kTanh);
  alg::Maml<double> maml(policy, {.inner_lr = 2.0, .inner_steps = 1, .outer_lr = 0.05});
  alg::Maml<double> first_order(policy, {.inner_lr = 2.0, .first_order = true});

  const MetaBatch mb = collect(maml, 0);
  ASSERT_EQ(mb.tasks.size(), static_cast<std::size_t>(kTasks));
  // Every pull came from the environments: rewards are 0 or 1, actions are arms.
  for (const BanditTask& t : mb.tasks) {
    for (double r : t.query.rewards) EXPECT_TRUE(r == 0.0 || r == 1.0);
    for (ml::Index a : t.support.actions) EXPECT_TRUE(a >= 0 && a < kArms);
  }
  // The inner policy-gradient step moves each policy towards its bandit's better arms.
  EXPECT_GT(mb.adapted_reward, mb.support_reward + 0.01);

  // The meta-gradient is the derivative of the summed query surrogate through the inner
  // step (second order), against central differences with the pulls held fixed.
  const alg::MetaGradient<double> g = maml.meta_gradient_of(mb.query_loss, kTasks);
  EXPECT_EQ(g.tasks, static_cast<std::size_t>(kTasks));
  std::vector<double> numeric;
  const double eps = 1e-6;
  for (const auto& p : maml.meta_parameters().values()) {
    for (ml::Index i = 0; i < p.numel(); ++i) {
      const double saved = p.data()[i];
      p.data()[i] = saved + eps;
      const double plus = meta_objective(maml, mb.tasks);
      p.data()[i] = saved - eps;
      const double minus = meta_objective(maml, mb.tasks);
      p.data()[i] = saved;
      numeric.push_back((plus - minus) / (2 * eps));
    }
  }
  const std::vector<double> analytic = flat(g);
  ASSERT_EQ(analytic.size(), numeric.size());
  const double error = relative_error(analytic, numeric);
  EXPECT_LT(error, 1e-7);

  // First-order MAML drops the Hessian of the inner surrogate, and here that term is not
  // negligible: its gradient is measurably different from the whole derivative.
  double fo_total = 0;
  std::vector<double> fo;
  {
    ml::Tensor<double> total;
    for (const BanditTask& task : mb.tasks) {
      auto learner = first_order.clone();
      learner.adapt(ml::policy_gradient_loss(learner(observations(kPulls)), task.support.actions,
                                             task.support.advantages()));
      auto q = ml::policy_gradient_loss(learner(observations(kPulls)), task.query.actions,
                                        task.query.advantages());
      total = total.defined() ? ml::add(total, q) : q;
    }
    fo_total = total.item();
    fo = flat(first_order.meta_gradient_of(total, kTasks));
  }
  EXPECT_NEAR(fo_total, meta_objective(maml, mb.tasks), 1e-12);
  const double fo_error = relative_error(fo, numeric);
  std::printf(
      "meta-gradient against central differences: second order %.2e, first order %.2e; "
      "expected reward %.4f before the inner step, %.4f after\n",
      error, fo_error, mb.support_reward, mb.adapted_reward);
  EXPECT_GT(fo_error, 1e-3);

  // apply() takes the outer step: the meta-parameters move, the step is counted.
  const std::vector<double> before = [&] {
    std::vector<double> v;
    for (const auto& p : maml.meta_parameters().values())
      v.insert(v.end(), p.data(), p.data() + p.numel());
    return v;
  }();
  maml.apply(g);
  EXPECT_EQ(maml.steps_taken(), 1);
  std::vector<double> after;
  for (const auto& p : maml.meta_parameters().values())
    after.insert(after.end(), p.data(), p.data() + p.numel());
  EXPECT_GT(relative_error(after, before), 1e-4);
}

TEST(MamlReinforce, MetaTrainingOnBanditsRaisesTheAdaptedPolicysExpectedReward) {
  // A few dozen meta-steps from a policy that strongly prefers one arm: the meta-learned
  // initialisation must adapt to each new bandit better than the one it started from.
  // Scored exactly, from the arm means of held-out test bandits (no sampling noise in
  // the score itself).
  ml::Generator gen(11);
  ml::nn::MLP<double> policy({1, 8, kArms}, gen, ml::nn::Activation::kTanh);
  alg::Maml<double> maml(policy, {.inner_lr = 2.0, .inner_steps = 1, .outer_lr = 0.05});
  // Bias the untrained policy towards arm 0, whatever its weights.
  {
    const auto params = maml.meta_parameters();
    for (const auto& [name, p] : params) {
      if (name.ends_with("bias") && p.numel() == kArms) p.data()[0] += 3.0;
    }
  }
  const auto score = [&] {
    // The mean over test bandits of the exact expected reward after one inner step.
    const me::BernoulliBandits family({.arms = kArms, .pulls = 2 * kPulls});
    double total = 0;
    constexpr int kTest = 64;
    for (int m = 0; m < kTest; ++m) {
      me::BernoulliBandit bandit =
          family.make(kSeed, me::Split::kTest, static_cast<std::uint64_t>(m));
      const std::vector<double> p = bandit.probabilities();
      auto learner = maml.clone();
      ml::Generator agent(me::agent_seed(kSeed, me::Split::kTest, static_cast<std::uint64_t>(m)));
      const std::vector<double> pi = softmax_row(learner(observations(1)));
      Phase support;
      bandit.reset();
      for (ml::Index t = 0; t < kPulls; ++t) {
        const ml::Index a = me::sample_categorical(agent, pi);
        support.actions.push_back(a);
        support.rewards.push_back(bandit.step(a).reward);
        if (t + 1 < kPulls) bandit.reset();
      }
      learner.adapt(ml::policy_gradient_loss(learner(observations(kPulls)), support.actions,
                                             support.advantages()));
      total += expected_reward(learner, p);
    }
    return total / kTest;
  };
  const double before = score();
  for (std::int64_t step = 0; step < 40; ++step) {
    const MetaBatch mb = collect(maml, step);
    maml.apply(maml.meta_gradient_of(mb.query_loss, kTasks));
  }
  const double after = score();
  std::printf(
      "MAML-REINFORCE 5-arm bandits: expected reward after one inner step %.4f before "
      "meta-training, %.4f after 40 meta-steps\n",
      before, after);
  EXPECT_GT(after, before + 0.03);
}
