// RandomAgent and the bandit baselines.

#include <cmath>

#include "metalearn/core/error.hpp"
#include "metalearn/env/agent.hpp"
#include "metalearn/env/bandit_agents.hpp"
#include "metalearn/env/distributions.hpp"

namespace metalearn::env {
namespace {

void check_prior(const BetaPrior& prior, const char* who) {
  METALEARN_CHECK(prior.alpha > 0.0 && prior.beta > 0.0 && std::isfinite(prior.alpha) &&
                      std::isfinite(prior.beta),
                  ValueError, who,
                  ": the Beta prior needs alpha > 0 and beta > 0, got alpha=", prior.alpha,
                  " beta=", prior.beta);
}

void check_arms(const EnvSpec& spec, const char* who) {
  METALEARN_CHECK(spec.actions >= 1, ValueError, who, ": the environment has ", spec.actions,
                  " actions");
}

double posterior_mean(const detail::ArmCounts& c, std::size_t i, const BetaPrior& prior) {
  return (prior.alpha + c.successes[i]) / (prior.alpha + prior.beta + c.pulls[i]);
}

/// The arm of highest posterior mean, the lowest index among ties.
Index greedy_arm(const detail::ArmCounts& c, const BetaPrior& prior) {
  std::size_t best = 0;
  double best_value = posterior_mean(c, 0, prior);
  for (std::size_t i = 1; i < c.pulls.size(); ++i) {
    const double v = posterior_mean(c, i, prior);
    if (v > best_value) {
      best_value = v;
      best = i;
    }
  }
  return static_cast<Index>(best);
}

void check_action(const detail::ArmCounts& c, Index action, const char* who) {
  METALEARN_CHECK(action >= 0 && action < c.arms(), ValueError, who, "::observe: action ", action,
                  " out of range for ", c.arms(), " arms (was begin_trial called?)");
}

}  // namespace

// ---- RandomAgent ----------------------------------------------------------------

void RandomAgent::begin_trial(const EnvSpec& spec, Generator gen) {
  check_arms(spec, "RandomAgent::begin_trial");
  actions_ = spec.actions;
  gen_ = gen;
}

Index RandomAgent::act(Index /*observation*/) {
  return gen_.randint(0, actions_ - 1);
}

// ---- GreedyBandit ---------------------------------------------------------------

GreedyBandit::GreedyBandit(GreedyBanditOptions options) : options_(options) {
  check_prior(options_.prior, "GreedyBandit");
}

void GreedyBandit::begin_trial(const EnvSpec& spec, Generator /*gen*/) {
  check_arms(spec, "GreedyBandit::begin_trial");
  counts_.reset(spec.actions);
}

Index GreedyBandit::act(Index /*observation*/) {
  return greedy_arm(counts_, options_.prior);
}

void GreedyBandit::observe(Index /*observation*/, Index action, double reward,
                           Index /*next_observation*/, bool /*done*/) {
  check_action(counts_, action, "GreedyBandit");
  counts_.add(action, reward);
}

// ---- EpsilonGreedyBandit --------------------------------------------------------

EpsilonGreedyBandit::EpsilonGreedyBandit(EpsilonGreedyBanditOptions options) : options_(options) {
  METALEARN_CHECK(options_.epsilon >= 0.0 && options_.epsilon <= 1.0, ValueError,
                  "EpsilonGreedyBandit: epsilon must be in [0, 1], got ", options_.epsilon);
  check_prior(options_.prior, "EpsilonGreedyBandit");
}

void EpsilonGreedyBandit::begin_trial(const EnvSpec& spec, Generator gen) {
  check_arms(spec, "EpsilonGreedyBandit::begin_trial");
  counts_.reset(spec.actions);
  gen_ = gen;
}

Index EpsilonGreedyBandit::act(Index /*observation*/) {
  if (gen_.uniform() < options_.epsilon) return gen_.randint(0, counts_.arms() - 1);
  return greedy_arm(counts_, options_.prior);
}

void EpsilonGreedyBandit::observe(Index /*observation*/, Index action, double reward,
                                  Index /*next_observation*/, bool /*done*/) {
  check_action(counts_, action, "EpsilonGreedyBandit");
  counts_.add(action, reward);
}

// ---- Ucb1 -----------------------------------------------------------------------

Ucb1::Ucb1(Ucb1Options options) : options_(options) {
  METALEARN_CHECK(options_.c >= 0.0 && std::isfinite(options_.c), ValueError,
                  "Ucb1: c must be >= 0 and finite, got ", options_.c);
  check_prior(options_.prior, "Ucb1");
}

void Ucb1::begin_trial(const EnvSpec& spec, Generator /*gen*/) {
  check_arms(spec, "Ucb1::begin_trial");
  counts_.reset(spec.actions);
}

Index Ucb1::act(Index /*observation*/) {
  const std::size_t arms = counts_.pulls.size();
  const auto t = static_cast<double>(counts_.total);
  const double log_t = counts_.total > 1 ? std::log(t) : 0.0;
  std::size_t best = 0;
  double best_value = 0.0;
  for (std::size_t i = 0; i < arms; ++i) {
    double value = 0.0;
    if (options_.pseudo_counts) {
      const double n = options_.prior.alpha + options_.prior.beta + counts_.pulls[i];
      value = posterior_mean(counts_, i, options_.prior) + options_.c * std::sqrt(2.0 * log_t / n);
    } else {
      const double n = counts_.pulls[i];
      if (n == 0.0) return static_cast<Index>(i);  // every arm once first
      value = counts_.successes[i] / n + options_.c * std::sqrt(2.0 * log_t / n);
    }
    if (i == 0 || value > best_value) {
      best_value = value;
      best = i;
    }
  }
  return static_cast<Index>(best);
}

void Ucb1::observe(Index /*observation*/, Index action, double reward, Index /*next_observation*/,
                   bool /*done*/) {
  check_action(counts_, action, "Ucb1");
  counts_.add(action, reward);
}

// ---- ThompsonSampling -----------------------------------------------------------

ThompsonSampling::ThompsonSampling(ThompsonSamplingOptions options) : options_(options) {
  check_prior(options_.prior, "ThompsonSampling");
}

void ThompsonSampling::begin_trial(const EnvSpec& spec, Generator gen) {
  check_arms(spec, "ThompsonSampling::begin_trial");
  counts_.reset(spec.actions);
  gen_ = gen;
}

Index ThompsonSampling::act(Index /*observation*/) {
  std::size_t best = 0;
  double best_value = -1.0;
  for (std::size_t i = 0; i < counts_.pulls.size(); ++i) {
    const double s = counts_.successes[i];
    const double f = counts_.pulls[i] - s;
    const double draw = sample_beta(gen_, options_.prior.alpha + s, options_.prior.beta + f);
    if (draw > best_value) {
      best_value = draw;
      best = i;
    }
  }
  return static_cast<Index>(best);
}

void ThompsonSampling::observe(Index /*observation*/, Index action, double reward,
                               Index /*next_observation*/, bool /*done*/) {
  check_action(counts_, action, "ThompsonSampling");
  counts_.add(action, reward);
}

}  // namespace metalearn::env
