// TabularMdp and the TabularMdps family.

#include "metalearn/env/tabular_mdp.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "metalearn/core/error.hpp"
#include "metalearn/env/distributions.hpp"
#include "metalearn/env/planning.hpp"

namespace metalearn::env {
namespace {

void check_options(const TabularMdpOptions& o, const char* who) {
  METALEARN_CHECK(o.states >= 1 && o.actions >= 1 && o.horizon >= 1 && o.episodes >= 1, ValueError,
                  who, ": states, actions, horizon and episodes must be >= 1, got ", o.states, ", ",
                  o.actions, ", ", o.horizon, ", ", o.episodes);
  METALEARN_CHECK(o.start_state >= 0 && o.start_state < o.states, ValueError, who, ": start_state ",
                  o.start_state, " out of range for ", o.states, " states");
  METALEARN_CHECK(o.reward_mean_std >= 0.0 && o.reward_noise_std >= 0.0 &&
                      std::isfinite(o.reward_mean) && std::isfinite(o.reward_mean_std) &&
                      std::isfinite(o.reward_noise_std),
                  ValueError, who,
                  ": reward_mean must be finite and the standard deviations finite and >= 0, "
                  "got reward_mean=",
                  o.reward_mean, " reward_mean_std=", o.reward_mean_std,
                  " reward_noise_std=", o.reward_noise_std);
  METALEARN_CHECK(o.transition_alpha > 0.0 && std::isfinite(o.transition_alpha), ValueError, who,
                  ": transition_alpha must be > 0 and finite, got ", o.transition_alpha);
}

}  // namespace

TabularMdp::TabularMdp(const TabularMdpOptions& options, std::vector<double> reward_means,
                       std::vector<double> transitions, Generator noise)
    : options_(options),
      reward_means_(std::move(reward_means)),
      transitions_(std::move(transitions)),
      noise_(noise) {
  check_options(options_, "TabularMdp");
  const auto S = static_cast<std::size_t>(options_.states);
  const auto A = static_cast<std::size_t>(options_.actions);
  METALEARN_CHECK(reward_means_.size() == S * A && transitions_.size() == S * A * S, ValueError,
                  "TabularMdp: expected ", S * A, " mean rewards and ", S * A * S,
                  " transition probabilities for ", S, " states and ", A, " actions, got ",
                  reward_means_.size(), " and ", transitions_.size());
  for (std::size_t sa = 0; sa < S * A; ++sa) {
    METALEARN_CHECK(std::isfinite(reward_means_[sa]), ValueError, "TabularMdp: mean reward of (",
                    sa / A, ", ", sa % A, ") is not finite: ", reward_means_[sa]);
    double sum = 0.0;
    for (std::size_t j = 0; j < S; ++j) {
      const double p = transitions_[sa * S + j];
      METALEARN_CHECK(p >= 0.0 && std::isfinite(p), ValueError, "TabularMdp: P(", j, " | ", sa / A,
                      ", ", sa % A, ") = ", p, " is not a probability");
      sum += p;
    }
    METALEARN_CHECK(std::abs(sum - 1.0) <= 1e-9, ValueError, "TabularMdp: the transition row of (",
                    sa / A, ", ", sa % A, ") sums to ", sum, ", not 1");
  }
  state_ = options_.start_state;
}

EnvSpec TabularMdp::spec() const {
  return {.observations = options_.states,
          .actions = options_.actions,
          .horizon = options_.horizon,
          .episodes = options_.episodes};
}

Index TabularMdp::reset() {
  state_ = options_.start_state;
  t_ = 0;
  in_episode_ = true;
  return state_;
}

Step TabularMdp::step(Index action) {
  METALEARN_CHECK(in_episode_, ValueError,
                  "TabularMdp::step: ", t_ == 0 ? "no episode started" : "the episode is over",
                  " (after ", t_, " of ", options_.horizon, " steps); call reset() first");
  METALEARN_CHECK(action >= 0 && action < options_.actions, ValueError, "TabularMdp::step: action ",
                  action, " out of range for ", options_.actions, " actions");
  const auto sa = static_cast<std::size_t>(state_ * options_.actions + action);
  const double reward = reward_means_[sa] + options_.reward_noise_std * noise_.normal();
  const auto S = static_cast<std::size_t>(options_.states);
  state_ = sample_categorical(noise_, std::span<const double>(transitions_).subspan(sa * S, S));
  ++t_;
  const bool done = t_ == options_.horizon;
  if (done) in_episode_ = false;
  return {.observation = state_, .reward = reward, .done = done};
}

double TabularMdp::reward_mean(Index s, Index a) const {
  METALEARN_CHECK(s >= 0 && s < options_.states && a >= 0 && a < options_.actions, ValueError,
                  "TabularMdp::reward_mean: (", s, ", ", a, ") out of range for ", options_.states,
                  " states and ", options_.actions, " actions");
  return reward_means_[static_cast<std::size_t>(s * options_.actions + a)];
}

std::span<const double> TabularMdp::transition(Index s, Index a) const {
  METALEARN_CHECK(s >= 0 && s < options_.states && a >= 0 && a < options_.actions, ValueError,
                  "TabularMdp::transition: (", s, ", ", a, ") out of range for ", options_.states,
                  " states and ", options_.actions, " actions");
  const auto S = static_cast<std::size_t>(options_.states);
  return std::span<const double>(transitions_)
      .subspan(static_cast<std::size_t>(s * options_.actions + a) * S, S);
}

double TabularMdp::optimal_episode_value() const {
  const std::vector<double> q = finite_horizon_q(reward_means_, transitions_, options_.states,
                                                 options_.actions, options_.horizon);
  const auto A = static_cast<std::size_t>(options_.actions);
  const auto begin =
      q.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(options_.start_state) * A);
  return *std::max_element(begin, begin + static_cast<std::ptrdiff_t>(A));
}

TabularMdps::TabularMdps(TabularMdpOptions options) : options_(options) {
  check_options(options_, "TabularMdps");
}

EnvSpec TabularMdps::spec() const {
  return {.observations = options_.states,
          .actions = options_.actions,
          .horizon = options_.horizon,
          .episodes = options_.episodes};
}

TabularMdp TabularMdps::sample(Generator& gen) const {
  const auto S = static_cast<std::size_t>(options_.states);
  const auto A = static_cast<std::size_t>(options_.actions);
  std::vector<double> rewards(S * A);
  for (double& r : rewards) r = options_.reward_mean + options_.reward_mean_std * gen.normal();
  std::vector<double> transitions(S * A * S);
  const std::vector<double> alpha(S, options_.transition_alpha);
  for (std::size_t sa = 0; sa < S * A; ++sa) {
    sample_dirichlet(gen, alpha, std::span<double>(transitions).subspan(sa * S, S));
  }
  const std::uint64_t noise_seed = gen();
  return TabularMdp(options_, std::move(rewards), std::move(transitions), Generator(noise_seed));
}

TabularMdp TabularMdps::make(std::uint64_t seed, Split split, std::uint64_t index) const {
  Generator gen(environment_seed(seed, split, index));
  return sample(gen);
}

}  // namespace metalearn::env
