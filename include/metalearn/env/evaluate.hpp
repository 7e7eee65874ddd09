#pragma once
/// @file
/// Running agents through trials: run_trial (one environment, one agent) and evaluate
/// (mean total reward per trial over many environments of a family, with a 95%
/// interval; parallel over trials, the same bits for any thread count).

#include <cstddef>
#include <cstdint>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/shape.hpp"
#include "metalearn/core/thread_pool.hpp"
#include "metalearn/env/agent.hpp"
#include "metalearn/env/environment.hpp"

namespace metalearn::env {

/// The seed of the agent's random stream in trial `index` of a run: independent of the
/// environment's streams (derive_seed({seed, split, index, tag})).
[[nodiscard]] constexpr std::uint64_t agent_seed(std::uint64_t seed, Split split,
                                                 std::uint64_t index) {
  constexpr std::uint64_t kAgentTag = 0x61'67'65'6E'74ULL;  // "agent"
  return derive_seed({seed, static_cast<std::uint64_t>(split), index, kAgentTag});
}

/// Runs `agent` through one trial of `env` (spec().episodes episodes of spec().horizon
/// steps); returns the reward of every step in order.
template <Environment E, Agent A>
std::vector<double> run_trial(E& env, A& agent, Generator agent_gen) {
  const EnvSpec spec = env.spec();
  agent.begin_trial(spec, agent_gen);
  std::vector<double> rewards;
  rewards.reserve(static_cast<std::size_t>(spec.trial_steps()));
  for (Index episode = 0; episode < spec.episodes; ++episode) {
    Index observation = env.reset();
    agent.begin_episode();
    for (;;) {
      const Index action = agent.act(observation);
      const Step step = env.step(action);
      agent.observe(observation, action, step.reward, step.observation, step.done);
      rewards.push_back(step.reward);
      observation = step.observation;
      if (step.done) break;
    }
  }
  return rewards;
}

/// Options of evaluate().
struct EvalOptions {
  /// Trials, each on its own environment (environments 0 .. trials - 1 of the run).
  Index trials = 1000;
  /// Seed of the run.
  std::uint64_t seed = 0;
  /// Stream of environments.
  Split split = Split::kTest;
  /// Threads running trials (1: serial). Does not change the result.
  std::size_t threads = 1;
};

/// Total reward per trial: the mean over trials with the half-width of its 95% interval
/// (1.96 standard errors).
struct Score {
  /// Mean total reward per trial.
  double mean = 0.0;
  /// Half-width of the 95% confidence interval of the mean.
  double ci95 = 0.0;
  /// Number of trials.
  Index trials = 0;
  /// Total reward of every trial, in trial order.
  std::vector<double> returns;
  /// Mean reward at every step of the trial (over trials), for regret curves.
  std::vector<double> mean_rewards;

  /// The score of the given per-trial returns (mean_rewards left empty).
  [[nodiscard]] METALEARN_API static Score from_returns(std::vector<double> returns);
};

/// Runs a copy of `agent` through trial m = 0 .. trials - 1 on family.make(seed, split, m)
/// with the random stream Generator(agent_seed(seed, split, m)), and scores the total
/// rewards. Trials run on a ThreadPool of `threads` threads; sums are taken in trial
/// order, so the result is the same for any thread count. Throws ValueError for
/// trials < 1 or threads < 1, and rethrows what a trial throws.
///
/// @code
/// env::BernoulliBandits family({.arms = 5, .pulls = 100});
/// env::Score s = env::evaluate(family, env::ThompsonSampling{}, {.trials = 1000, .seed = 1});
/// std::printf("%.1f +- %.1f\n", s.mean, s.ci95);
/// @endcode
template <EnvFamily F, Agent A>
Score evaluate(const F& family, const A& agent, const EvalOptions& options = {}) {
  METALEARN_CHECK(options.trials >= 1, ValueError, "evaluate: trials must be >= 1, got ",
                  options.trials);
  METALEARN_CHECK(options.threads >= 1, ValueError, "evaluate: threads must be >= 1, got ",
                  options.threads);
  const auto n = static_cast<std::size_t>(options.trials);
  std::vector<std::vector<double>> rewards(n);
  const auto one = [&](std::size_t m) {
    const auto index = static_cast<std::uint64_t>(m);
    auto env = family.make(options.seed, options.split, index);
    A copy = agent;
    rewards[m] = run_trial(env, copy, Generator(agent_seed(options.seed, options.split, index)));
  };
  if (options.threads <= 1 || n == 1) {
    for (std::size_t m = 0; m < n; ++m) one(m);
  } else {
    ThreadPool pool(options.threads);
    pool.run(n, one);
  }
  std::vector<double> returns(n, 0.0);
  const std::size_t steps = rewards.front().size();
  std::vector<double> per_step(steps, 0.0);
  for (std::size_t m = 0; m < n; ++m) {
    double total = 0.0;
    for (std::size_t t = 0; t < rewards[m].size(); ++t) {
      total += rewards[m][t];
      if (t < steps) per_step[t] += rewards[m][t];
    }
    returns[m] = total;
  }
  for (double& r : per_step) r /= static_cast<double>(n);
  Score score = Score::from_returns(std::move(returns));
  score.mean_rewards = std::move(per_step);
  return score;
}

}  // namespace metalearn::env
