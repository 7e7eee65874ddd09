#pragma once
/// @file
/// Baseline agents for tabular MDPs, as in Duan et al. 2016, Table 2: posterior
/// sampling (PSRL, Osband et al. 2013) and certainty-equivalent planning (the table's
/// "greedy"; epsilon-greedy with epsilon > 0), both planning by finite-horizon dynamic
/// programming at the start of every episode on a TabularPosterior.
///
/// The prior defaults are those of the paper's baselines (Osband's TabulaRL agents:
/// Dirichlet(1) rows, reward means N(0, 1) with known noise precision 1). They put the
/// reward means around 0 while the TabularMdps family draws them around 1;
/// `.reward_mean = 1` gives the family's own prior.

#include <vector>

#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/shape.hpp"
#include "metalearn/env/agent.hpp"
#include "metalearn/env/environment.hpp"

namespace metalearn::env {

/// The prior of TabularPosterior.
struct TabularPrior {
  /// Concentration of the symmetric Dirichlet prior of every transition row (> 0).
  double transition_alpha = 1.0;
  /// Prior mean of every mean reward R(s, a).
  double reward_mean = 0.0;
  /// Prior precision (1 / variance) of every mean reward (> 0).
  double reward_precision = 1.0;
  /// Known precision of the reward noise (> 0).
  double noise_precision = 1.0;
};

/// A posterior over tabular MDPs: Dirichlet(alpha + counts) on each transition row and
/// a Normal posterior on each mean reward (conjugate to Gaussian noise of known
/// precision: tau' = tau + noise_precision, mu' = (tau mu + noise_precision r) / tau').
class METALEARN_API TabularPosterior {
 public:
  TabularPosterior() = default;
  /// The prior over MDPs with the given sizes. Throws ValueError for sizes < 1 or prior
  /// parameters out of range.
  TabularPosterior(Index states, Index actions, const TabularPrior& prior);

  /// Adds one transition (s, a) -> next with reward r.
  void update(Index s, Index a, double reward, Index next);
  /// Draws mean rewards and transition rows from the posterior into `reward_means`
  /// ([states * actions]) and `transitions` ([states * actions * states]): for every
  /// (s, a) in row-major order a normal draw for R(s, a) and a Dirichlet row.
  void sample(Generator& gen, std::vector<double>& reward_means,
              std::vector<double>& transitions) const;
  /// The posterior means, in the same layout as sample().
  void mean(std::vector<double>& reward_means, std::vector<double>& transitions) const;
  /// Times (s, a) was taken.
  [[nodiscard]] Index visits(Index s, Index a) const;

  [[nodiscard]] Index states() const { return states_; }
  [[nodiscard]] Index actions() const { return actions_; }

 private:
  Index states_ = 0;
  Index actions_ = 0;
  TabularPrior prior_;
  std::vector<double> alpha_;       // [S * A * S]: prior alpha + counts
  std::vector<double> reward_mu_;   // [S * A]
  std::vector<double> reward_tau_;  // [S * A]
  std::vector<Index> visits_;       // [S * A]
};

/// Options of Psrl.
struct PsrlOptions {
  /// The prior; the paper's baseline defaults.
  TabularPrior prior{};
};

/// Posterior sampling for reinforcement learning: at the start of every episode, one
/// MDP drawn from the posterior, solved by finite-horizon dynamic programming, then
/// followed greedily for the episode (ties broken uniformly at random).
class METALEARN_API Psrl {
 public:
  /// Throws ValueError for prior parameters out of range.
  explicit Psrl(PsrlOptions options = {});
  /// Resets the posterior to the prior; takes the trial's random stream.
  void begin_trial(const EnvSpec& spec, Generator gen);
  /// Draws an MDP from the posterior and plans on it.
  void begin_episode();
  /// The greedy action of the plan at the current step of the episode.
  Index act(Index observation);
  /// Updates the posterior.
  void observe(Index observation, Index action, double reward, Index next_observation, bool done);

 private:
  PsrlOptions options_;
  EnvSpec spec_;
  TabularPosterior posterior_;
  std::vector<double> rewards_;
  std::vector<double> transitions_;
  std::vector<double> q_;
  Index t_ = 0;
  Generator gen_;
};

/// Options of CertaintyEquivalent.
struct CertaintyEquivalentOptions {
  /// The prior; the paper's baseline defaults.
  TabularPrior prior{};
  /// Probability of a uniformly random action on each step, in [0, 1] (0: greedy).
  double epsilon = 0.0;
};

/// Certainty-equivalent planning: at the start of every episode, finite-horizon dynamic
/// programming on the posterior-mean MDP, followed greedily (ties broken uniformly at
/// random), with probability epsilon a uniformly random action instead.
class METALEARN_API CertaintyEquivalent {
 public:
  /// Throws ValueError for epsilon outside [0, 1] or prior parameters out of range.
  explicit CertaintyEquivalent(CertaintyEquivalentOptions options = {});
  /// Resets the posterior to the prior; takes the trial's random stream.
  void begin_trial(const EnvSpec& spec, Generator gen);
  /// Plans on the posterior-mean MDP.
  void begin_episode();
  /// The (epsilon-)greedy action of the plan at the current step of the episode.
  Index act(Index observation);
  /// Updates the posterior.
  void observe(Index observation, Index action, double reward, Index next_observation, bool done);

 private:
  CertaintyEquivalentOptions options_;
  EnvSpec spec_;
  TabularPosterior posterior_;
  std::vector<double> rewards_;
  std::vector<double> transitions_;
  std::vector<double> q_;
  Index t_ = 0;
  Generator gen_;
};

static_assert(Agent<Psrl> && Agent<CertaintyEquivalent>);

}  // namespace metalearn::env
