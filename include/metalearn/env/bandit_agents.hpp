#pragma once
/// @file
/// Baseline agents for Bernoulli bandits, as in Duan et al. 2016, Table 1: greedy,
/// epsilon-greedy, UCB1 (textbook, and the paper's form with a tuned constant) and
/// Thompson sampling. Each keeps per-arm success and pull counts; "posterior" means
/// the Beta posterior of an arm's success probability under a Beta(alpha, beta) prior.
/// A reward > 0 counts as a success. Ties between arms go to the lowest index (the
/// paper's baselines take numpy's argmax).

#include <vector>

#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/shape.hpp"
#include "metalearn/env/agent.hpp"
#include "metalearn/env/environment.hpp"

namespace metalearn::env {

/// A Beta(alpha, beta) prior on every arm's success probability.
struct BetaPrior {
  /// Prior pseudo-successes (> 0).
  double alpha = 1.0;
  /// Prior pseudo-failures (> 0).
  double beta = 1.0;
};

namespace detail {

/// Success and pull counts per arm, shared by the bandit agents.
struct ArmCounts {
  std::vector<double> successes;
  std::vector<double> pulls;
  Index total = 0;

  void reset(Index arms) {
    successes.assign(static_cast<std::size_t>(arms), 0.0);
    pulls.assign(static_cast<std::size_t>(arms), 0.0);
    total = 0;
  }
  void add(Index arm, double reward) {
    const auto i = static_cast<std::size_t>(arm);
    if (reward > 0.0) successes[i] += 1.0;
    pulls[i] += 1.0;
    ++total;
  }
  [[nodiscard]] Index arms() const { return static_cast<Index>(pulls.size()); }
};

}  // namespace detail

/// Options of GreedyBandit.
struct GreedyBanditOptions {
  /// The prior whose posterior mean ranks the arms; Beta(1, 1) as in the paper.
  BetaPrior prior{};
};

/// Pulls the arm with the highest posterior mean (alpha + s) / (alpha + beta + n).
class METALEARN_API GreedyBandit {
 public:
  /// Throws ValueError for a prior parameter <= 0.
  explicit GreedyBandit(GreedyBanditOptions options = {});
  /// Forgets the counts.
  void begin_trial(const EnvSpec& spec, Generator gen);
  /// Nothing to do.
  void begin_episode() {}
  /// The arm of highest posterior mean.
  Index act(Index observation);
  /// Counts the pull.
  void observe(Index observation, Index action, double reward, Index next_observation, bool done);

 private:
  GreedyBanditOptions options_;
  detail::ArmCounts counts_;
};

/// Options of EpsilonGreedyBandit.
struct EpsilonGreedyBanditOptions {
  /// Probability of a uniformly random arm on each pull, in [0, 1].
  double epsilon = 0.1;
  /// The prior of the greedy choice.
  BetaPrior prior{};
};

/// With probability epsilon a uniform arm, else GreedyBandit's choice (one uniform draw
/// per pull, and one integer draw when exploring).
class METALEARN_API EpsilonGreedyBandit {
 public:
  /// Throws ValueError for epsilon outside [0, 1] or a prior parameter <= 0.
  explicit EpsilonGreedyBandit(EpsilonGreedyBanditOptions options = {});
  /// Forgets the counts; takes the trial's random stream.
  void begin_trial(const EnvSpec& spec, Generator gen);
  /// Nothing to do.
  void begin_episode() {}
  /// A uniform arm with probability epsilon, else the greedy arm.
  Index act(Index observation);
  /// Counts the pull.
  void observe(Index observation, Index action, double reward, Index next_observation, bool done);

 private:
  EpsilonGreedyBanditOptions options_;
  detail::ArmCounts counts_;
  Generator gen_;
};

/// Options of Ucb1.
struct Ucb1Options {
  /// Scale of the exploration bonus c * sqrt(2 ln t / n_i); 1 is the textbook rule.
  double c = 1.0;
  /// false: textbook UCB1 (Auer et al. 2002): every arm once, then the empirical mean
  /// s_i / n_i plus the bonus with t the pulls so far. true: the form of the paper's
  /// baseline: the posterior mean (alpha + s_i) / (alpha + beta + n_i) plus
  /// c * sqrt(2 ln t / (alpha + beta + n_i)), with t the pulls so far (no bonus while
  /// t <= 1), and c tuned on a grid.
  bool pseudo_counts = false;
  /// The prior of the pseudo counts (used when pseudo_counts is true).
  BetaPrior prior{};
};

/// UCB1: the arm of highest upper confidence index.
class METALEARN_API Ucb1 {
 public:
  /// Throws ValueError for c < 0 or a prior parameter <= 0.
  explicit Ucb1(Ucb1Options options = {});
  /// Forgets the counts.
  void begin_trial(const EnvSpec& spec, Generator gen);
  /// Nothing to do.
  void begin_episode() {}
  /// The first arm never pulled (textbook form), else the arm of highest index.
  Index act(Index observation);
  /// Counts the pull.
  void observe(Index observation, Index action, double reward, Index next_observation, bool done);

 private:
  Ucb1Options options_;
  detail::ArmCounts counts_;
};

/// Options of ThompsonSampling.
struct ThompsonSamplingOptions {
  /// The prior; Beta(1, 1) as in the paper.
  BetaPrior prior{};
};

/// Thompson sampling: draws p_i ~ Beta(alpha + s_i, beta + n_i - s_i) for every arm (in
/// arm order) and pulls the arm of the largest draw.
class METALEARN_API ThompsonSampling {
 public:
  /// Throws ValueError for a prior parameter <= 0.
  explicit ThompsonSampling(ThompsonSamplingOptions options = {});
  /// Forgets the counts; takes the trial's random stream.
  void begin_trial(const EnvSpec& spec, Generator gen);
  /// Nothing to do.
  void begin_episode() {}
  /// The arm of the largest posterior draw.
  Index act(Index observation);
  /// Counts the pull.
  void observe(Index observation, Index action, double reward, Index next_observation, bool done);

 private:
  ThompsonSamplingOptions options_;
  detail::ArmCounts counts_;
  Generator gen_;
};

static_assert(Agent<GreedyBandit> && Agent<EpsilonGreedyBandit> && Agent<Ucb1> &&
              Agent<ThompsonSampling>);

}  // namespace metalearn::env
