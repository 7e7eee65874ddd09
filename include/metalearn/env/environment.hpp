#pragma once
/// @file
/// The environment interface: one environment (the Environment concept), a family of
/// environments keyed by (seed, split, index) (the EnvFamily concept), and EnvBatch, a
/// batch of environments of one family that steps together through whole trials.
///
/// Vocabulary (Duan et al. 2016): an *episode* is `horizon` steps from the start
/// observation; a *trial* is `episodes` episodes on one sampled environment. A Bernoulli
/// bandit has horizon 1 (one pull is one episode, a trial of n pulls is n episodes).
///
/// Observations and actions are integers in [0, observations) and [0, actions);
/// rewards are doubles. Batches exchange plain std::vector arrays, one entry per
/// environment.

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/shape.hpp"
#include "metalearn/core/split.hpp"

namespace metalearn::env {

/// Which stream of environments a family draws from (core/split.hpp, shared with the
/// task samplers of the data layer).
using metalearn::Split;

/// The seed of environment `index` of a run: derive_seed({seed, split, index}), the
/// rule of the supervised task samplers.
[[nodiscard]] constexpr std::uint64_t environment_seed(std::uint64_t seed, Split split,
                                                       std::uint64_t index) {
  return derive_seed({seed, static_cast<std::uint64_t>(split), index});
}

/// Sizes shared by every environment of a family.
struct EnvSpec {
  /// Number of distinct observations (1 for a bandit, the states for a tabular MDP).
  Index observations = 1;
  /// Number of actions (arms for a bandit).
  Index actions = 1;
  /// Steps per episode (1 for a bandit).
  Index horizon = 1;
  /// Episodes per trial (pulls for a bandit).
  Index episodes = 1;

  /// Steps per trial: horizon * episodes.
  [[nodiscard]] Index trial_steps() const { return horizon * episodes; }
  friend bool operator==(const EnvSpec&, const EnvSpec&) = default;
};

/// What one step of one environment returns.
struct Step {
  /// The observation after the step (the state reached, also on the last step).
  Index observation = 0;
  /// The reward of the step.
  double reward = 0.0;
  /// Whether this step ended the episode (after `horizon` steps).
  bool done = false;
};

/// One environment: `reset()` starts an episode and returns its first observation;
/// `step(action)` advances it. Stepping after the episode ended, before the next
/// reset(), or with an action outside [0, actions) throws ValueError. All randomness
/// of the steps comes from the environment's own generator, so an environment is a
/// pure function of its seed and of the actions it is given.
template <class E>
concept Environment = std::copy_constructible<E> && requires(E& e, const E& ce, Index action) {
  { ce.spec() } -> std::same_as<EnvSpec>;
  { e.reset() } -> std::same_as<Index>;
  { e.step(action) } -> std::same_as<Step>;
};

/// A family of environments: `sample(gen)` draws one with `gen` only, and `make(seed,
/// split, index)` is `sample` on a generator seeded by environment_seed(seed, split,
/// index). Every environment of a family has the family's spec().
template <class F>
concept EnvFamily = requires(const F& f, Generator& gen, std::uint64_t seed, Split split) {
  { f.spec() } -> std::same_as<EnvSpec>;
  { f.sample(gen) } -> Environment;
  { f.make(seed, split, seed) } -> std::same_as<decltype(f.sample(gen))>;
};

/// The environment type of a family.
template <EnvFamily F>
using family_env_t = decltype(std::declval<const F&>().make(0, Split::kTrain, 0));

/// What one step of a batch returns, one entry per environment.
struct BatchStep {
  /// The next observation. Where the step ended an episode and the trial goes on, this
  /// is the first observation of the next episode (the environment was reset).
  std::vector<Index> observations;
  /// The rewards of the step.
  std::vector<double> rewards;
  /// 1 where the step ended an episode, else 0.
  std::vector<std::uint8_t> dones;
  /// Whether this step was the last of the trial (then every entry of dones is 1).
  bool trial_done = false;
};

/// Environments of one family stepping together through one trial each: the shape
/// of a batch of RL^2 trials.
///
/// reset() starts a trial in every environment; each step() takes one action per
/// environment. When an episode ends, the environment is reset for the next one and the
/// start observation is returned in its place (the done flag says so), until the last
/// episode of the trial ends (trial_done). Stepping a batch gives exactly what stepping
/// each environment alone with the same actions gives.
///
/// @code
/// env::BernoulliBandits family({.arms = 5, .pulls = 10});
/// auto batch = env::make_batch(family, /*seed=*/1, env::Split::kTrain, /*first=*/0, 64);
/// std::vector<Index> obs = batch.reset();
/// std::vector<Index> actions(64, 0);
/// while (!batch.step(actions).trial_done) { /* choose the next actions */ }
/// @endcode
template <Environment E>
class EnvBatch {
 public:
  using environment_type = E;

  /// Takes the environments of the batch. Throws ValueError when there are none or
  /// their specs differ.
  explicit EnvBatch(std::vector<E> envs) : envs_(std::move(envs)) {
    METALEARN_CHECK(!envs_.empty(), ValueError, "EnvBatch: needs at least one environment");
    spec_ = envs_.front().spec();
    for (std::size_t i = 1; i < envs_.size(); ++i) {
      const EnvSpec s = envs_[i].spec();
      METALEARN_CHECK(s == spec_, ValueError, "EnvBatch: environment ", i, " has spec (",
                      s.observations, " observations, ", s.actions, " actions, horizon ", s.horizon,
                      ", ", s.episodes, " episodes), environment 0 has (", spec_.observations, ", ",
                      spec_.actions, ", ", spec_.horizon, ", ", spec_.episodes, ")");
    }
    const std::size_t n = envs_.size();
    step_.observations.assign(n, 0);
    step_.rewards.assign(n, 0.0);
    step_.dones.assign(n, 0);
  }

  /// Number of environments.
  [[nodiscard]] Index size() const { return static_cast<Index>(envs_.size()); }
  /// The spec every environment of the batch has.
  [[nodiscard]] const EnvSpec& spec() const { return spec_; }

  /// Starts a trial in every environment; returns the first observations.
  const std::vector<Index>& reset() {
    for (std::size_t i = 0; i < envs_.size(); ++i) step_.observations[i] = envs_[i].reset();
    std::fill(step_.rewards.begin(), step_.rewards.end(), 0.0);
    std::fill(step_.dones.begin(), step_.dones.end(), std::uint8_t{0});
    step_.trial_done = false;
    steps_ = 0;
    started_ = true;
    return step_.observations;
  }

  /// Steps environment i with actions[i] for every i. Throws ValueError when the
  /// number of actions is not size(), when no trial was started or the trial is over,
  /// or (from the environment) for an action out of range.
  const BatchStep& step(std::span<const Index> actions) {
    METALEARN_CHECK(static_cast<Index>(actions.size()) == size(), ValueError,
                    "EnvBatch::step: got ", actions.size(), " actions for ", size(),
                    " environments");
    METALEARN_CHECK(started_ && !step_.trial_done, ValueError, "EnvBatch::step: ",
                    started_ ? "the trial is over (call reset() to start the next one)"
                             : "no trial started (call reset() first)");
    ++steps_;
    const bool trial_done = steps_ == spec_.trial_steps();
    for (std::size_t i = 0; i < envs_.size(); ++i) {
      const Step s = envs_[i].step(actions[i]);
      step_.rewards[i] = s.reward;
      step_.dones[i] = s.done ? 1 : 0;
      step_.observations[i] = (s.done && !trial_done) ? envs_[i].reset() : s.observation;
    }
    step_.trial_done = trial_done;
    return step_;
  }

  /// Steps taken in the current trial.
  [[nodiscard]] Index steps() const { return steps_; }
  /// Whether the current trial is over.
  [[nodiscard]] bool trial_done() const { return step_.trial_done; }
  /// The result of the last step (or of reset()).
  [[nodiscard]] const BatchStep& last() const { return step_; }

  /// Environment i (for its parameters).
  [[nodiscard]] const E& operator[](Index i) const {
    METALEARN_CHECK(i >= 0 && i < size(), ValueError, "EnvBatch: index ", i, " out of range for ",
                    size(), " environments");
    return envs_[static_cast<std::size_t>(i)];
  }

 private:
  std::vector<E> envs_;
  EnvSpec spec_;
  BatchStep step_;
  Index steps_ = 0;
  bool started_ = false;
};

/// The batch of environments first, first + 1, ..., first + count - 1 of a run
/// (each from family.make(seed, split, index)). Throws ValueError for count < 1.
template <EnvFamily F>
[[nodiscard]] EnvBatch<family_env_t<F>> make_batch(const F& family, std::uint64_t seed, Split split,
                                                   std::uint64_t first, Index count) {
  METALEARN_CHECK(count >= 1, ValueError, "make_batch: count must be >= 1, got ", count);
  std::vector<family_env_t<F>> envs;
  envs.reserve(static_cast<std::size_t>(count));
  for (Index i = 0; i < count; ++i) {
    envs.push_back(family.make(seed, split, first + static_cast<std::uint64_t>(i)));
  }
  return EnvBatch<family_env_t<F>>(std::move(envs));
}

}  // namespace metalearn::env
