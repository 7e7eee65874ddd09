#pragma once
/// @file
/// Random tabular MDPs: TabularMdp (one environment) and TabularMdps (the family of
/// Duan et al. 2016, section 3.2: 10 states, 5 actions, episodes of 10 steps from a
/// fixed start state, mean rewards ~ N(1, 1) with N(0, 1) noise on every step,
/// transition rows ~ Dirichlet(1)).

#include <cstdint>
#include <span>
#include <vector>

#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/shape.hpp"
#include "metalearn/env/environment.hpp"

namespace metalearn::env {

/// Sizes and distributions of the tabular MDP family. Defaults are the paper's, with
/// 10 episodes per trial (its first row).
struct TabularMdpOptions {
  /// Number of states.
  Index states = 10;
  /// Number of actions.
  Index actions = 5;
  /// Steps per episode.
  Index horizon = 10;
  /// Episodes per trial.
  Index episodes = 10;
  /// The state every episode starts in.
  Index start_state = 0;
  /// Mean of the distribution of the mean rewards R(s, a).
  double reward_mean = 1.0;
  /// Standard deviation of the distribution of the mean rewards R(s, a).
  double reward_mean_std = 1.0;
  /// Standard deviation of the Gaussian noise added to R(s, a) on every step.
  double reward_noise_std = 1.0;
  /// Concentration of the symmetric Dirichlet each transition row is drawn from.
  double transition_alpha = 1.0;
};

/// One tabular MDP. Taking action a in state s gives reward R(s, a) + noise_std * N(0, 1)
/// and moves to s' with probability P(s' | s, a); an episode is `horizon` steps from
/// `start_state`; the observation is the state.
class METALEARN_API TabularMdp {
 public:
  /// An MDP with the given mean rewards ([states * actions], row-major in (s, a)) and
  /// transitions ([states * actions * states], row (s, a) holds P(. | s, a)). Sizes,
  /// horizon, episodes, start state and reward noise come from `options` (its
  /// distribution fields are not used). Throws ValueError for sizes that do not fit, a
  /// negative or non-finite probability, a row that does not sum to 1 (within 1e-9),
  /// or invalid options.
  TabularMdp(const TabularMdpOptions& options, std::vector<double> reward_means,
             std::vector<double> transitions, Generator noise);

  /// `states` observations, `actions` actions, `horizon`, `episodes`.
  [[nodiscard]] EnvSpec spec() const;
  /// Starts an episode in the start state; returns it.
  Index reset();
  /// Takes `action` in the current state: a normal draw for the reward noise, then a
  /// uniform draw for the next state; done after `horizon` steps of the episode.
  Step step(Index action);

  /// The current state.
  [[nodiscard]] Index state() const { return state_; }
  /// Steps taken in the current episode.
  [[nodiscard]] Index step_in_episode() const { return t_; }
  /// R(s, a).
  [[nodiscard]] double reward_mean(Index s, Index a) const;
  /// P(. | s, a), `states` entries summing to one.
  [[nodiscard]] std::span<const double> transition(Index s, Index a) const;
  /// All mean rewards, [states * actions].
  [[nodiscard]] const std::vector<double>& reward_means() const { return reward_means_; }
  /// All transition rows, [states * actions * states].
  [[nodiscard]] const std::vector<double>& transitions() const { return transitions_; }
  /// The expected return of one episode under the optimal policy (finite-horizon
  /// dynamic programming on the true R and P): the best any agent can average.
  [[nodiscard]] double optimal_episode_value() const;
  [[nodiscard]] const TabularMdpOptions& options() const { return options_; }

 private:
  TabularMdpOptions options_;
  std::vector<double> reward_means_;
  std::vector<double> transitions_;
  Generator noise_;
  Index state_ = 0;
  Index t_ = 0;
  bool in_episode_ = false;
};

/// The family of random tabular MDPs.
///
/// @code
/// env::TabularMdps family({.episodes = 25});
/// env::TabularMdp mdp = family.make(/*seed=*/1, env::Split::kTest, /*index=*/0);
/// Index s = mdp.reset();
/// env::Step step = mdp.step(2);
/// @endcode
class METALEARN_API TabularMdps {
 public:
  using environment_type = TabularMdp;

  /// Throws ValueError for sizes < 1, a start state out of range, a negative standard
  /// deviation or a concentration <= 0.
  explicit TabularMdps(TabularMdpOptions options = {});

  /// `states` observations, `actions` actions, `horizon`, `episodes`.
  [[nodiscard]] EnvSpec spec() const;
  /// Draws one MDP with `gen`: R(s, a) for every (s, a) in row-major order, then the
  /// Dirichlet row of every (s, a) in the same order, then one 64-bit value that seeds
  /// the MDP's own reward-noise and transition stream.
  [[nodiscard]] TabularMdp sample(Generator& gen) const;
  /// MDP `index` of the run: sample() on Generator(environment_seed(seed, split, index)).
  [[nodiscard]] TabularMdp make(std::uint64_t seed, Split split, std::uint64_t index) const;

  [[nodiscard]] const TabularMdpOptions& options() const { return options_; }

 private:
  TabularMdpOptions options_;
};

static_assert(Environment<TabularMdp> && EnvFamily<TabularMdps>);

}  // namespace metalearn::env
