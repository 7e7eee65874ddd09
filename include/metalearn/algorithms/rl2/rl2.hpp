#pragma once
/// @file
/// RL^2 (Duan et al. 2016, "Fast Reinforcement Learning via Slow Reinforcement
/// Learning"): a recurrent policy (Rl2Policy) whose hidden state is kept across all the
/// episodes of a trial on one sampled environment, trained by PPO over many
/// environments of a family, so that the recurrent dynamics become a learning
/// algorithm for the family.
///
/// One meta-step collects `trials` trials (each on its own environment of the
/// training stream) in parallel, then runs `epochs` epochs of `minibatches` PPO
/// updates over them, back-propagating through whole trials.
///
/// @code
/// env::BernoulliBandits family({.arms = 5, .pulls = 10});
/// Generator gen(1);
/// algorithms::Rl2<env::BernoulliBandits> rl2(family, gen, {.seed = 1});
/// for (int i = 0; i < 1000; ++i) rl2.meta_step();
/// algorithms::EvalResult r = rl2.evaluate(1000);  // mean total reward per trial
/// @endcode
///
/// Seeding: trial m of meta-step k runs on family.make(seed, train, k * trials + m)
/// with the action stream env::agent_seed(seed, train, k * trials + m); evaluation
/// trial m on family.make(seed, test, m) with env::agent_seed(seed, test, m), the
/// protocol of env::evaluate. Trials are stepped in fixed groups (`collect_chunk` when
/// collecting, `chunk` when updating), so the results are the same bits for any thread count.
// SPDX-License-Identifier: MIT

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "metalearn/algorithms/common.hpp"
#include "metalearn/algorithms/meta_learner.hpp"
#include "metalearn/algorithms/rl2/policy.hpp"
#include "metalearn/algorithms/rl2/ppo.hpp"
#include "metalearn/autograd/grad.hpp"
#include "metalearn/autograd/grad_mode.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/shape.hpp"
#include "metalearn/core/thread_pool.hpp"
#include "metalearn/env/environment.hpp"
#include "metalearn/env/evaluate.hpp"
#include "metalearn/nn/param_dict.hpp"
#include "metalearn/optim/adam.hpp"
#include "metalearn/tensor/factory.hpp"
#include "metalearn/tensor/ops/elementwise.hpp"
#include "metalearn/tensor/ops/shape_ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::algorithms {

/// Options of Rl2. GRU size, gamma and lambda are the paper's (Duan et al. 2016,
/// section 4); the PPO constants are those of Schulman et al. (2017) and OpenAI
/// baselines' ppo2 (the paper trained with TRPO, which has no equivalents for them).
struct Rl2Options {
  /// GRU units (the paper: 256).
  Index hidden = 256;
  /// Give the value head a GRU of its own (Rl2Policy's separate_value), so the value
  /// loss trains none of the policy's parameters; false: one GRU under both heads.
  bool separate_value = false;
  /// Trials collected per meta-step, each on its own environment (not from the paper,
  /// which used TRPO batches of 250,000 steps).
  Index trials = 128;
  /// Discount factor across the whole trial (the paper: 0.99).
  double gamma = 0.99;
  /// GAE lambda (the paper: 0.3).
  double gae_lambda = 0.3;
  /// PPO's clipping range of the probability ratio (Schulman et al.: 0.2).
  double clip = 0.2;
  /// Passes over the collected trials per meta-step (ppo2: 4).
  Index epochs = 4;
  /// Minibatches of whole trials per epoch (ppo2: 4).
  Index minibatches = 4;
  /// Weight of the value loss (V - R)^2 / 2 (ppo2: 0.5).
  double value_coef = 0.5;
  /// Factor on the rewards of the learning signal: the advantages and the value targets
  /// are computed from reward * reward_scale, so the value head learns scaled returns;
  /// the policy's input keeps the raw reward. Long trials at gamma near 1 have large
  /// returns (about 100 on the paper's MDPs), and the value loss's gradient through the
  /// shared GRU then swamps the policy's under max_grad_norm; a scale below 1 (0.1
  /// there) keeps the two in balance. Not in the paper, whose TRPO fitted the value
  /// separately. 1: the rewards as they are.
  double reward_scale = 1.0;
  /// Weight of the entropy bonus (ppo2: 0.01).
  double entropy_coef = 0.01;
  /// Adam's learning rate (Schulman et al.: 3e-4).
  double lr = 3e-4;
  /// Adam's epsilon (ppo2: 1e-5).
  double adam_eps = 1e-5;
  /// Clip the global norm of every minibatch gradient to this (ppo2: 0.5); 0: no clipping.
  double max_grad_norm = 0.5;
  /// With separate_value, clip the gradient of the policy's network (the parameters of
  /// `gru` and `policy`) and that of the value's (`value_gru` and `value`) to
  /// max_grad_norm each, as two optimisers of their own would: the value's gradient, on
  /// returns far larger than the normalised advantages, then no longer shrinks the
  /// policy's steps. false: one norm over both. Needs separate_value (one GRU under both
  /// heads has no such split).
  bool clip_each_network = false;
  /// Standardise the advantages of each meta-step's trials (mean 0, standard deviation 1).
  bool normalize_advantages = true;
  /// Trials stepped together as one batch when collecting and one unit of gradient
  /// work when updating. Results depend on it (row groupings of the products) but not
  /// on `threads`.
  Index chunk = 16;
  /// Trials stepped together as one batch when collecting. No gradients are kept there,
  /// so a larger batch costs little memory and makes the products longer and faster
  /// (at the paper's GRU 256: 68k environment steps/s in batches of 16, 107k in batches
  /// of 64, one AMD Zen 3 core). Results may depend on it, not on `threads`.
  Index collect_chunk = 64;
  /// Threads running the chunks (results equal the serial run).
  int threads = 1;
  /// Seed of the environment streams (training and evaluation) and of the shuffles.
  std::uint64_t seed = 0;
  /// Check every update for NaN or infinite values (see MamlOptions::check_finite).
  bool check_finite = true;
};

/// Trials of one family, one value per (trial, step) at index trial * steps() + t.
struct TrialBatch {
  /// The family's spec (steps per trial: spec.trial_steps()).
  env::EnvSpec spec;
  /// Number of trials.
  Index trials = 0;
  /// The observation the policy acted on at each step.
  std::vector<Index> observations;
  /// The action taken.
  std::vector<Index> actions;
  /// The step's reward.
  std::vector<double> rewards;
  /// 1 where the step ended an episode.
  std::vector<std::uint8_t> dones;
  /// Log-probability of the action under the policy that collected it.
  std::vector<double> log_probs;
  /// The collecting policy's value estimate at the step.
  std::vector<double> values;

  /// Steps per trial.
  [[nodiscard]] Index steps() const { return spec.trial_steps(); }
  /// Index of step t of trial m.
  [[nodiscard]] std::size_t at(Index trial, Index t) const {
    return static_cast<std::size_t>(trial * steps() + t);
  }
  /// Total reward of every trial.
  [[nodiscard]] std::vector<double> trial_returns() const {
    std::vector<double> out(static_cast<std::size_t>(trials), 0.0);
    for (Index m = 0; m < trials; ++m) {
      for (Index t = 0; t < steps(); ++t) out[static_cast<std::size_t>(m)] += rewards[at(m, t)];
    }
    return out;
  }
};

/// Statistics of one meta-step: StepStats (meta_loss: the mean PPO loss over the
/// update's minibatches; post_loss: the same; mean_return: the mean total reward per
/// collected trial; tasks: the trials collected) and the PPO terms.
struct Rl2Stats : StepStats {
  double policy_loss = 0.0;    ///< mean clipped-surrogate loss
  double value_loss = 0.0;     ///< mean (V - R)^2 / 2
  double entropy = 0.0;        ///< mean policy entropy
  double approx_kl = 0.0;      ///< mean old - new log-probability
  double clip_fraction = 0.0;  ///< fraction of rows whose ratio was clipped
  /// Mean over the update's minibatches of the gradient's global norm before clipping.
  double grad_norm = 0.0;
  /// The same for the value's parameters alone (those of `value`, and of `value_gru` with
  /// separate_value): the share of grad_norm that the value loss sets.
  double value_grad_norm = 0.0;

  /// The update's diagnostics by name, for the metrics log (train::fit writes them
  /// beside the meta-loss): the losses, entropy, approx_kl, clip_fraction, grad_norm,
  /// value_grad_norm.
  [[nodiscard]] std::vector<std::pair<std::string, double>> diagnostics() const {
    return {{"policy_loss", policy_loss},
            {"value_loss", value_loss},
            {"entropy", entropy},
            {"approx_kl", approx_kl},
            {"clip_fraction", clip_fraction},
            {"grad_norm", grad_norm},
            {"value_grad_norm", value_grad_norm}};
  }
};

/// The policy's outputs over whole trials: logits [steps * n, actions] and values
/// [steps * n], row t * n + j for step t of the j-th trial asked for.
template <class T>
struct TrialOutputs {
  Tensor<T> logits;
  Tensor<T> values;
};

/// RL^2 on environments of family F (an env::EnvFamily), trained by PPO.
///
/// It satisfies EnvironmentMetaLearner (algorithms/meta_learner.hpp), so train::fit runs
/// it with checkpoints, resume and metrics: meta_step() is one collect-and-update
/// iteration, evaluate() the mean total reward per trial with a 95% interval over fresh
/// environments, state() / load_state() continue bit for bit, and adapting is running
/// trials with agent().
template <env::EnvFamily F, class T = float>
class Rl2 {
 public:
  using value_type = T;
  using family_type = F;
  /// What adapting to an environment means here: an agent running trials.
  using Adapted = Rl2Agent<T>;

  /// A policy for `family`'s observations and actions, initialised from `gen`.
  /// @throws ValueError naming the option for an invalid option.
  Rl2(F family, Generator& gen, Rl2Options options = {});

  /// One meta-step: collect options().trials trials of the training stream, then PPO.
  Rl2Stats meta_step();

  /// Trials first, ..., first + count - 1 of `family`'s stream (seed, split) with the
  /// current policy (no gradients), stepped in chunks on the thread pool.
  /// @throws ValueError for count < 1 or a family whose sizes differ from the policy's.
  [[nodiscard]] TrialBatch collect(const F& family, std::uint64_t seed, env::Split split,
                                   std::uint64_t first, Index count) const;
  /// The trials of meta-step `step`: collect(family(), seed, train, step * trials, trials).
  [[nodiscard]] TrialBatch collect_step(std::int64_t step) const;

  /// The PPO update on `batch` (advantages by gae with the options' gamma and lambda),
  /// the shuffles seeded by steps_taken(). meta_step() is collect_step() then this,
  /// then counts the step; update() alone does not count it.
  Rl2Stats update(const TrialBatch& batch);

  /// The policy's outputs over the trials `trials` of `batch`, from the zero hidden
  /// state at the start of each trial, with `params` (named as meta_parameters());
  /// differentiable. This is the forward pass of the update.
  [[nodiscard]] TrialOutputs<T> trial_outputs(const TrialBatch& batch,
                                              const std::vector<Index>& trials,
                                              const nn::ParamDict<T>& params) const;

  /// The advantages (normalised when the options say so) and value targets of every
  /// step of `batch`, indexed like it, from the rewards times options().reward_scale.
  [[nodiscard]] std::pair<std::vector<double>, std::vector<double>> advantages(
      const TrialBatch& batch) const;

  /// Mean total reward per trial with its 95% interval over trials 0 .. trials - 1 of
  /// the test stream of options().seed (family.make(seed, test, m), the actions from
  /// env::agent_seed(seed, test, m)), sampling from the policy.
  [[nodiscard]] EvalResult evaluate(std::size_t trials) const;
  /// The same on another family of the same observations and actions (other pulls or
  /// episodes per trial).
  [[nodiscard]] EvalResult evaluate(const F& family, std::size_t trials) const;

  /// An env::Agent running a snapshot of the current policy (adapting is running it).
  [[nodiscard]] Rl2Agent<T> agent() const { return Rl2Agent<T>(*policy_); }

  /// The policy's parameters (`gru.*`, `policy.*`, `value.*`).
  [[nodiscard]] nn::ParamDict<T> meta_parameters() const { return policy_->named_parameters(); }
  /// Parameters, Adam's state and steps_taken().
  [[nodiscard]] LearnerState<T> state() const;
  /// Continues from a state(): all or nothing.
  /// @throws ValueError / ShapeError naming the offending entry.
  void load_state(const LearnerState<T>& state);

  [[nodiscard]] std::int64_t steps_taken() const { return steps_taken_; }
  [[nodiscard]] const Rl2Options& options() const { return options_; }
  [[nodiscard]] const F& family() const { return family_; }
  [[nodiscard]] const Rl2Policy<T>& policy() const { return *policy_; }

 private:
  void check_family(const F& family, const char* function) const;
  void minibatch_step(const TrialBatch& batch, const std::vector<Index>& trials,
                      const std::vector<double>& advantages, const std::vector<double>& returns,
                      Rl2Stats& sums);

  F family_;
  Rl2Options options_;
  std::unique_ptr<Rl2Policy<T>> policy_;
  std::unique_ptr<optim::Adam<T>> outer_;
  mutable ThreadPool pool_;
  std::int64_t steps_taken_ = 0;
};

// ---- definitions -------------------------------------------------------------------

namespace detail {
/// Tag of the update's shuffle stream ("rl2shuf").
inline constexpr std::uint64_t kRl2ShuffleTag = 0x72'6C'32'73'68'75'66ULL;
}  // namespace detail

template <env::EnvFamily F, class T>
Rl2<F, T>::Rl2(F family, Generator& gen, Rl2Options options)
    : family_(std::move(family)),
      options_(options),
      pool_(thread_count(options.threads, "Rl2"), "Rl2") {
  const char* who = "Rl2";
  const Rl2Options& o = options_;
  METALEARN_CHECK(o.hidden >= 1 && o.trials >= 1 && o.epochs >= 1 && o.minibatches >= 1 &&
                      o.chunk >= 1 && o.collect_chunk >= 1,
                  ValueError, who, ": hidden (", o.hidden, "), trials (", o.trials, "), epochs (",
                  o.epochs, "), minibatches (", o.minibatches, "), chunk (", o.chunk,
                  ") and collect_chunk (", o.collect_chunk, ") must be >= 1");
  METALEARN_CHECK(o.minibatches <= o.trials, ValueError, who, ": minibatches (", o.minibatches,
                  ") exceeds trials (", o.trials, "); a minibatch holds whole trials");
  METALEARN_CHECK(o.gamma >= 0.0 && o.gamma <= 1.0 && o.gae_lambda >= 0.0 && o.gae_lambda <= 1.0,
                  ValueError, who, ": gamma (", o.gamma, ") and gae_lambda (", o.gae_lambda,
                  ") must lie in [0, 1]");
  METALEARN_CHECK(o.clip > 0.0 && o.clip < 1.0, ValueError, who, ": clip ", o.clip,
                  " must lie in (0, 1)");
  METALEARN_CHECK(o.value_coef >= 0.0 && o.entropy_coef >= 0.0 && o.max_grad_norm >= 0.0,
                  ValueError, who, ": value_coef (", o.value_coef, "), entropy_coef (",
                  o.entropy_coef, ") and max_grad_norm (", o.max_grad_norm,
                  ") must be non-negative");
  METALEARN_CHECK(!o.clip_each_network || o.separate_value, ValueError, who,
                  ": clip_each_network needs separate_value (with one GRU under both heads "
                  "the policy's and the value's gradients share parameters)");
  METALEARN_CHECK(o.reward_scale > 0.0 && std::isfinite(o.reward_scale), ValueError, who,
                  ": reward_scale ", o.reward_scale, " must be positive and finite");
  METALEARN_CHECK(o.lr > 0.0 && std::isfinite(o.lr) && o.adam_eps >= 0.0, ValueError, who,
                  ": learning rate ", o.lr, " must be positive and finite, adam_eps ", o.adam_eps,
                  " non-negative");
  const env::EnvSpec spec = family_.spec();
  policy_ = std::make_unique<Rl2Policy<T>>(spec.observations, spec.actions, o.hidden, gen,
                                           o.separate_value);
  outer_ = std::make_unique<optim::Adam<T>>(meta_parameters().values(),
                                            optim::AdamOptions{.lr = o.lr, .eps = o.adam_eps});
}

template <env::EnvFamily F, class T>
void Rl2<F, T>::check_family(const F& family, const char* function) const {
  const env::EnvSpec spec = family.spec();
  METALEARN_CHECK(
      spec.observations == policy_->observations() && spec.actions == policy_->actions(),
      ValueError, function, ": the family has ", spec.observations, " observations and ",
      spec.actions, " actions, the policy was built for ", policy_->observations(), " and ",
      policy_->actions());
}

template <env::EnvFamily F, class T>
TrialBatch Rl2<F, T>::collect(const F& family, std::uint64_t seed, env::Split split,
                              std::uint64_t first, Index count) const {
  const char* function = "Rl2::collect";
  METALEARN_CHECK(count >= 1, ValueError, function, ": count must be >= 1, got ", count);
  check_family(family, function);
  TrialBatch batch;
  batch.spec = family.spec();
  batch.trials = count;
  const Index steps = batch.steps();
  const auto total = static_cast<std::size_t>(count * steps);
  batch.observations.assign(total, 0);
  batch.actions.assign(total, 0);
  batch.rewards.assign(total, 0.0);
  batch.dones.assign(total, 0);
  batch.log_probs.assign(total, 0.0);
  batch.values.assign(total, 0.0);
  const Index chunk = options_.collect_chunk;
  const Index chunks = (count + chunk - 1) / chunk;
  const Index actions = policy_->actions();
  const Index inputs = policy_->input_size();
  const nn::ParamDict<T> params = meta_parameters();
  pool_.run(static_cast<std::size_t>(chunks), [&](std::size_t c) {
    autograd::NoGradGuard no_grad;
    const Index m0 = static_cast<Index>(c) * chunk;
    const Index n = std::min(chunk, count - m0);
    auto envs = env::make_batch(family, seed, split, first + static_cast<std::uint64_t>(m0), n);
    std::vector<Generator> gens;
    gens.reserve(static_cast<std::size_t>(n));
    for (Index j = 0; j < n; ++j) {
      gens.emplace_back(env::agent_seed(seed, split, first + static_cast<std::uint64_t>(m0 + j)));
    }
    std::vector<Index> observations = envs.reset();
    std::vector<Rl2Previous> previous(static_cast<std::size_t>(n));
    std::vector<Index> chosen(static_cast<std::size_t>(n), 0);
    Tensor<T> h = zeros<T>(Shape{n, policy_->state_size()});
    for (Index t = 0; t < steps; ++t) {
      Tensor<T> x = zeros<T>(Shape{n, inputs});
      for (Index j = 0; j < n; ++j) {
        const auto ju = static_cast<std::size_t>(j);
        policy_->encode(observations[ju], previous[ju], x.data() + j * inputs);
      }
      h = policy_->step(x, h, params);
      const Tensor<T> logits = policy_->logits(h, params);
      const Tensor<T> values = policy_->value(h, params);
      for (Index j = 0; j < n; ++j) {
        const auto ju = static_cast<std::size_t>(j);
        const std::size_t k = batch.at(m0 + j, t);
        double log_prob = 0.0;
        chosen[ju] = sample_action(logits.data() + j * actions, actions, gens[ju], log_prob);
        batch.observations[k] = observations[ju];
        batch.actions[k] = chosen[ju];
        batch.log_probs[k] = log_prob;
        batch.values[k] = static_cast<double>(values.data()[j]);
      }
      const env::BatchStep& s = envs.step(chosen);
      for (Index j = 0; j < n; ++j) {
        const auto ju = static_cast<std::size_t>(j);
        const std::size_t k = batch.at(m0 + j, t);
        batch.rewards[k] = s.rewards[ju];
        batch.dones[k] = s.dones[ju];
        previous[ju] = Rl2Previous{chosen[ju], s.rewards[ju], s.dones[ju] != 0};
      }
      observations = s.observations;
    }
  });
  return batch;
}

template <env::EnvFamily F, class T>
TrialBatch Rl2<F, T>::collect_step(std::int64_t step) const {
  METALEARN_CHECK(step >= 0, ValueError, "Rl2::collect_step: negative step ", step);
  return collect(family_, options_.seed, env::Split::kTrain,
                 static_cast<std::uint64_t>(step) * static_cast<std::uint64_t>(options_.trials),
                 options_.trials);
}

template <env::EnvFamily F, class T>
TrialOutputs<T> Rl2<F, T>::trial_outputs(const TrialBatch& batch, const std::vector<Index>& trials,
                                         const nn::ParamDict<T>& params) const {
  const char* function = "Rl2::trial_outputs";
  METALEARN_CHECK(!trials.empty(), ValueError, function, ": no trials asked for");
  METALEARN_CHECK(batch.spec.observations == policy_->observations() &&
                      batch.spec.actions == policy_->actions(),
                  ValueError, function, ": the batch has ", batch.spec.observations,
                  " observations and ", batch.spec.actions, " actions, the policy was built for ",
                  policy_->observations(), " and ", policy_->actions());
  for (Index m : trials) {
    METALEARN_CHECK(m >= 0 && m < batch.trials, ValueError, function, ": trial ", m,
                    " out of range for a batch of ", batch.trials);
  }
  const auto n = static_cast<Index>(trials.size());
  const Index inputs = policy_->input_size();
  Tensor<T> h = zeros<T>(Shape{n, policy_->state_size()});
  std::vector<Tensor<T>> hidden;
  hidden.reserve(static_cast<std::size_t>(batch.steps()));
  for (Index t = 0; t < batch.steps(); ++t) {
    Tensor<T> x = zeros<T>(Shape{n, inputs});
    for (Index j = 0; j < n; ++j) {
      const Index m = trials[static_cast<std::size_t>(j)];
      Rl2Previous previous;
      if (t > 0) {
        const std::size_t k = batch.at(m, t - 1);
        previous = Rl2Previous{batch.actions[k], batch.rewards[k], batch.dones[k] != 0};
      }
      policy_->encode(batch.observations[batch.at(m, t)], previous, x.data() + j * inputs);
    }
    h = policy_->step(x, h, params);
    hidden.push_back(h);
  }
  const Tensor<T> all = concat<T>(hidden, 0);
  return TrialOutputs<T>{policy_->logits(all, params), policy_->value(all, params)};
}

template <env::EnvFamily F, class T>
std::pair<std::vector<double>, std::vector<double>> Rl2<F, T>::advantages(
    const TrialBatch& batch) const {
  const Index steps = batch.steps();
  std::vector<double> adv(batch.rewards.size()), ret(batch.rewards.size());
  for (Index m = 0; m < batch.trials; ++m) {
    const auto b = static_cast<std::ptrdiff_t>(batch.at(m, 0));
    std::vector<double> r(batch.rewards.begin() + b, batch.rewards.begin() + b + steps);
    for (double& x : r) x *= options_.reward_scale;
    const std::vector<double> v(batch.values.begin() + b, batch.values.begin() + b + steps);
    const std::vector<double> a = gae(r, v, options_.gamma, options_.gae_lambda);
    for (Index t = 0; t < steps; ++t) {
      const auto tu = static_cast<std::size_t>(t);
      adv[batch.at(m, t)] = a[tu];
      ret[batch.at(m, t)] = a[tu] + v[tu];
    }
  }
  if (options_.normalize_advantages && adv.size() > 1) {
    double mean = 0.0;
    for (double a : adv) mean += a;
    mean /= static_cast<double>(adv.size());
    double ss = 0.0;
    for (double a : adv) ss += (a - mean) * (a - mean);
    const double sd = std::sqrt(ss / static_cast<double>(adv.size() - 1));
    for (double& a : adv) a = (a - mean) / (sd + 1e-8);
  }
  return {std::move(adv), std::move(ret)};
}

template <env::EnvFamily F, class T>
void Rl2<F, T>::minibatch_step(const TrialBatch& batch, const std::vector<Index>& trials,
                               const std::vector<double>& advantages,
                               const std::vector<double>& returns, Rl2Stats& sums) {
  const char* function = "Rl2::update";
  const nn::ParamDict<T> named = meta_parameters();
  const std::vector<Tensor<T>> params = named.values();
  const Index steps = batch.steps();
  const auto count = static_cast<Index>(trials.size());
  const Index chunk = options_.chunk;
  const Index chunks = (count + chunk - 1) / chunk;
  const double scale = 1.0 / static_cast<double>(count * steps);
  const PpoCoefficients coefficients{options_.clip, options_.value_coef, options_.entropy_coef};
  struct Result {
    std::vector<Tensor<T>> grads;
    PpoLoss<T> loss;
  };
  std::vector<Result> results(static_cast<std::size_t>(chunks));
  pool_.run(static_cast<std::size_t>(chunks), [&](std::size_t c) {
    autograd::EnableGradGuard grad_on;
    const Index m0 = static_cast<Index>(c) * chunk;
    const Index n = std::min(chunk, count - m0);
    const std::vector<Index> part(trials.begin() + m0, trials.begin() + m0 + n);
    const TrialOutputs<T> out = trial_outputs(batch, part, named);
    PpoTargets targets;
    const auto rows = static_cast<std::size_t>(n * steps);
    targets.actions.reserve(rows);
    targets.old_log_probs.reserve(rows);
    targets.advantages.reserve(rows);
    targets.returns.reserve(rows);
    for (Index t = 0; t < steps; ++t) {
      for (Index m : part) {
        const std::size_t k = batch.at(m, t);
        targets.actions.push_back(batch.actions[k]);
        targets.old_log_probs.push_back(batch.log_probs[k]);
        targets.advantages.push_back(advantages[k]);
        targets.returns.push_back(returns[k]);
      }
    }
    Result& r = results[c];
    r.loss = ppo_loss(out.logits, out.values, targets, coefficients, scale);
    r.grads = autograd::grad({r.loss.loss}, params, autograd::GradOptions{.allow_unused = true});
  });
  std::vector<Tensor<T>> grads(params.size());
  for (Result& r : results) {
    add_gradients(grads, r.grads);
    sums.meta_loss += static_cast<double>(r.loss.loss.item());
    sums.policy_loss += r.loss.policy_loss;
    sums.value_loss += r.loss.value_loss;
    sums.entropy += r.loss.entropy;
    sums.approx_kl += r.loss.approx_kl;
    sums.clip_fraction += r.loss.clipped;
  }
  for (std::size_t j = 0; j < grads.size(); ++j) {
    if (!grads[j].defined()) grads[j] = zeros<T>(params[j].shape());
  }
  // Squared norms: of the whole gradient (summed in one order, element by element), of
  // the policy's parameters and of the value's (value.*, value_gru.*).
  const std::vector<std::string> names = named.names();
  std::vector<bool> of_value(grads.size());
  double total_ss = 0.0;
  double policy_ss = 0.0;
  double value_ss = 0.0;
  for (std::size_t j = 0; j < grads.size(); ++j) {
    of_value[j] = Rl2Policy<T>::value_parameter(names[j]);
    double ss = 0.0;
    const Tensor<T>& g = grads[j];
    for (Index i = 0; i < g.numel(); ++i) {
      const auto v = static_cast<double>(g.data()[i]);
      total_ss += v * v;
      ss += v * v;
    }
    (of_value[j] ? value_ss : policy_ss) += ss;
  }
  const double norm = std::sqrt(total_ss);
  sums.grad_norm += norm;
  sums.value_grad_norm += std::sqrt(value_ss);
  // The factor that brings a gradient of norm n to at most max_grad_norm.
  const auto factor = [&](double n) {
    return options_.max_grad_norm > 0.0 && n > options_.max_grad_norm
               ? options_.max_grad_norm / (n + 1e-6)
               : 1.0;
  };
  const double policy_factor =
      options_.clip_each_network ? factor(std::sqrt(policy_ss)) : factor(norm);
  const double value_factor =
      options_.clip_each_network ? factor(std::sqrt(value_ss)) : factor(norm);
  for (std::size_t j = 0; j < grads.size(); ++j) {
    const double f = of_value[j] ? value_factor : policy_factor;
    if (f != 1.0) grads[j] = mul_scalar(grads[j], static_cast<T>(f));
  }
  const detail::FiniteStepGuard<T> finite(options_.check_finite, named, outer_.get());
  const std::string where =
      std::string(function) + " (meta-step " + std::to_string(steps_taken_) + ")";
  finite.check_gradients(grads, where, "the PPO gradient of");
  outer_->step(grads);
  finite.check_updated(where);
}

template <env::EnvFamily F, class T>
Rl2Stats Rl2<F, T>::update(const TrialBatch& batch) {
  const char* function = "Rl2::update";
  METALEARN_CHECK(batch.trials >= options_.minibatches, ValueError, function, ": ", batch.trials,
                  " trials for ", options_.minibatches, " minibatches");
  METALEARN_CHECK(batch.rewards.size() == static_cast<std::size_t>(batch.trials * batch.steps()) &&
                      batch.values.size() == batch.rewards.size() &&
                      batch.log_probs.size() == batch.rewards.size() &&
                      batch.actions.size() == batch.rewards.size() &&
                      batch.observations.size() == batch.rewards.size() &&
                      batch.dones.size() == batch.rewards.size(),
                  ValueError, function, ": the batch's arrays do not hold ", batch.trials, " x ",
                  batch.steps(), " steps");
  const auto [adv, ret] = advantages(batch);
  Rl2Stats stats;
  stats.tasks = static_cast<std::size_t>(batch.trials);
  const std::vector<double> returns = batch.trial_returns();
  double total_return = 0.0;
  for (double r : returns) total_return += r;
  stats.mean_return = total_return / static_cast<double>(batch.trials);
  std::vector<Index> order(static_cast<std::size_t>(batch.trials));
  for (Index m = 0; m < batch.trials; ++m) order[static_cast<std::size_t>(m)] = m;
  const Index per = options_.minibatches;
  for (Index epoch = 0; epoch < options_.epochs; ++epoch) {
    Generator gen(
        derive_seed({options_.seed, detail::kRl2ShuffleTag,
                     static_cast<std::uint64_t>(steps_taken_), static_cast<std::uint64_t>(epoch)}));
    for (std::size_t i = order.size(); i > 1; --i) {
      const auto j = static_cast<std::size_t>(gen.randint(0, static_cast<std::int64_t>(i) - 1));
      std::swap(order[i - 1], order[j]);
    }
    for (Index b = 0; b < per; ++b) {
      const auto lo = static_cast<std::ptrdiff_t>(b * batch.trials / per);
      const auto hi = static_cast<std::ptrdiff_t>((b + 1) * batch.trials / per);
      const std::vector<Index> part(order.begin() + lo, order.begin() + hi);
      minibatch_step(batch, part, adv, ret, stats);
    }
  }
  const double rows =
      static_cast<double>(options_.epochs) * static_cast<double>(batch.trials * batch.steps());
  stats.meta_loss /= static_cast<double>(options_.epochs * per);
  stats.post_loss = stats.meta_loss;
  stats.policy_loss /= rows;
  stats.value_loss /= rows;
  stats.entropy /= rows;
  stats.approx_kl /= rows;
  stats.clip_fraction /= rows;
  stats.grad_norm /= static_cast<double>(options_.epochs * per);
  stats.value_grad_norm /= static_cast<double>(options_.epochs * per);
  return stats;
}

template <env::EnvFamily F, class T>
Rl2Stats Rl2<F, T>::meta_step() {
  const TrialBatch batch = collect_step(steps_taken_);
  const Rl2Stats stats = update(batch);
  ++steps_taken_;
  return stats;
}

template <env::EnvFamily F, class T>
EvalResult Rl2<F, T>::evaluate(const F& family, std::size_t trials) const {
  METALEARN_CHECK(trials >= 1, ValueError, "Rl2::evaluate: trials must be >= 1");
  const TrialBatch batch =
      collect(family, options_.seed, env::Split::kTest, 0, static_cast<Index>(trials));
  return EvalResult::from_values(batch.trial_returns());
}

template <env::EnvFamily F, class T>
EvalResult Rl2<F, T>::evaluate(std::size_t trials) const {
  return evaluate(family_, trials);
}

template <env::EnvFamily F, class T>
LearnerState<T> Rl2<F, T>::state() const {
  return detail::make_state(meta_parameters(), nn::ParamDict<T>(), std::optional(outer_->state()),
                            steps_taken_);
}

template <env::EnvFamily F, class T>
void Rl2<F, T>::load_state(const LearnerState<T>& state) {
  const char* function = "Rl2::load_state";
  detail::check_state(state, function, /*optimizer=*/true, /*inner=*/false, /*buffers=*/false);
  const detail::StateLoad<T> load(meta_parameters(), nn::ParamDict<T>(), state, function);
  outer_->load_state(*state.optimizer);  // checks everything before it changes anything
  load.commit();
  steps_taken_ = state.steps;
}

}  // namespace metalearn::algorithms
