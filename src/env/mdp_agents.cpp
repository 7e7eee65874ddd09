// TabularPosterior, PSRL and certainty-equivalent planning.

#include "metalearn/env/mdp_agents.hpp"

#include <cmath>
#include <span>

#include "metalearn/core/error.hpp"
#include "metalearn/env/distributions.hpp"
#include "metalearn/env/planning.hpp"

namespace metalearn::env {
namespace {

void check_prior(const TabularPrior& p, const char* who) {
  METALEARN_CHECK(p.transition_alpha > 0.0 && p.reward_precision > 0.0 && p.noise_precision > 0.0 &&
                      std::isfinite(p.transition_alpha) && std::isfinite(p.reward_precision) &&
                      std::isfinite(p.noise_precision) && std::isfinite(p.reward_mean),
                  ValueError, who,
                  ": the prior needs finite transition_alpha, reward_precision and "
                  "noise_precision > 0 and a finite reward_mean, got ",
                  p.transition_alpha, ", ", p.reward_precision, ", ", p.noise_precision, ", ",
                  p.reward_mean);
}

/// The greedy action of Q_t(s, .), ties broken uniformly at random (one integer draw
/// when there is a tie).
Index greedy_action(const std::vector<double>& q, const EnvSpec& spec, Index t, Index s,
                    Generator& gen) {
  const auto A = static_cast<std::size_t>(spec.actions);
  const std::size_t base = (static_cast<std::size_t>(t * spec.observations + s)) * A;
  double best = q[base];
  std::size_t ties = 1;
  for (std::size_t a = 1; a < A; ++a) {
    const double v = q[base + a];
    if (v > best) {
      best = v;
      ties = 1;
    } else if (v == best) {
      ++ties;
    }
  }
  if (ties == 1) {
    for (std::size_t a = 0; a < A; ++a) {
      if (q[base + a] == best) return static_cast<Index>(a);
    }
  }
  auto pick = static_cast<std::size_t>(gen.randint(0, static_cast<std::int64_t>(ties) - 1));
  for (std::size_t a = 0; a < A; ++a) {
    if (q[base + a] == best) {
      if (pick == 0) return static_cast<Index>(a);
      --pick;
    }
  }
  return 0;  // unreachable: `ties` actions hold the maximum
}

void check_step(const EnvSpec& spec, Index t, Index s, const char* who) {
  METALEARN_CHECK(spec.actions >= 1, ValueError, who, ": begin_trial was not called");
  METALEARN_CHECK(t < spec.horizon, ValueError, who, ": step ", t, " of an episode of ",
                  spec.horizon, " steps (begin_episode was not called?)");
  METALEARN_CHECK(s >= 0 && s < spec.observations, ValueError, who, ": state ", s,
                  " out of range for ", spec.observations, " states");
}

void check_spec(const EnvSpec& spec, const char* who) {
  METALEARN_CHECK(spec.observations >= 1 && spec.actions >= 1 && spec.horizon >= 1, ValueError, who,
                  ": needs states, actions and horizon >= 1, got ", spec.observations, ", ",
                  spec.actions, ", ", spec.horizon);
}

}  // namespace

// ---- TabularPosterior -----------------------------------------------------------

TabularPosterior::TabularPosterior(Index states, Index actions, const TabularPrior& prior)
    : states_(states), actions_(actions), prior_(prior) {
  METALEARN_CHECK(states >= 1 && actions >= 1, ValueError,
                  "TabularPosterior: states and actions must be >= 1, got ", states, ", ", actions);
  check_prior(prior, "TabularPosterior");
  const auto S = static_cast<std::size_t>(states);
  const auto A = static_cast<std::size_t>(actions);
  alpha_.assign(S * A * S, prior.transition_alpha);
  reward_mu_.assign(S * A, prior.reward_mean);
  reward_tau_.assign(S * A, prior.reward_precision);
  visits_.assign(S * A, 0);
}

void TabularPosterior::update(Index s, Index a, double reward, Index next) {
  METALEARN_CHECK(s >= 0 && s < states_ && a >= 0 && a < actions_ && next >= 0 && next < states_,
                  ValueError, "TabularPosterior::update: transition (", s, ", ", a, ") -> ", next,
                  " out of range for ", states_, " states and ", actions_, " actions");
  const auto sa = static_cast<std::size_t>(s * actions_ + a);
  const double tau = reward_tau_[sa] + prior_.noise_precision;
  reward_mu_[sa] = (reward_mu_[sa] * reward_tau_[sa] + reward * prior_.noise_precision) / tau;
  reward_tau_[sa] = tau;
  alpha_[sa * static_cast<std::size_t>(states_) + static_cast<std::size_t>(next)] += 1.0;
  ++visits_[sa];
}

void TabularPosterior::sample(Generator& gen, std::vector<double>& reward_means,
                              std::vector<double>& transitions) const {
  const auto S = static_cast<std::size_t>(states_);
  const std::size_t SA = S * static_cast<std::size_t>(actions_);
  reward_means.resize(SA);
  transitions.resize(SA * S);
  const std::span<const double> alpha(alpha_);
  for (std::size_t sa = 0; sa < SA; ++sa) {
    reward_means[sa] = reward_mu_[sa] + gen.normal() / std::sqrt(reward_tau_[sa]);
    sample_dirichlet(gen, alpha.subspan(sa * S, S),
                     std::span<double>(transitions).subspan(sa * S, S));
  }
}

void TabularPosterior::mean(std::vector<double>& reward_means,
                            std::vector<double>& transitions) const {
  const auto S = static_cast<std::size_t>(states_);
  const std::size_t SA = S * static_cast<std::size_t>(actions_);
  reward_means.assign(reward_mu_.begin(), reward_mu_.end());
  transitions.resize(SA * S);
  for (std::size_t sa = 0; sa < SA; ++sa) {
    double sum = 0.0;
    for (std::size_t j = 0; j < S; ++j) sum += alpha_[sa * S + j];
    for (std::size_t j = 0; j < S; ++j) transitions[sa * S + j] = alpha_[sa * S + j] / sum;
  }
}

Index TabularPosterior::visits(Index s, Index a) const {
  METALEARN_CHECK(s >= 0 && s < states_ && a >= 0 && a < actions_, ValueError,
                  "TabularPosterior::visits: (", s, ", ", a, ") out of range for ", states_,
                  " states and ", actions_, " actions");
  return visits_[static_cast<std::size_t>(s * actions_ + a)];
}

// ---- Psrl -----------------------------------------------------------------------

Psrl::Psrl(PsrlOptions options) : options_(options) {
  check_prior(options_.prior, "Psrl");
}

void Psrl::begin_trial(const EnvSpec& spec, Generator gen) {
  check_spec(spec, "Psrl::begin_trial");
  spec_ = spec;
  posterior_ = TabularPosterior(spec.observations, spec.actions, options_.prior);
  gen_ = gen;
  q_.clear();
  t_ = 0;
}

void Psrl::begin_episode() {
  METALEARN_CHECK(posterior_.states() >= 1, ValueError,
                  "Psrl::begin_episode: begin_trial was not called");
  posterior_.sample(gen_, rewards_, transitions_);
  q_ = finite_horizon_q(rewards_, transitions_, spec_.observations, spec_.actions, spec_.horizon);
  t_ = 0;
}

Index Psrl::act(Index observation) {
  check_step(spec_, t_, observation, "Psrl::act");
  METALEARN_CHECK(!q_.empty(), ValueError, "Psrl::act: begin_episode was not called");
  return greedy_action(q_, spec_, t_, observation, gen_);
}

void Psrl::observe(Index observation, Index action, double reward, Index next_observation,
                   bool /*done*/) {
  posterior_.update(observation, action, reward, next_observation);
  ++t_;
}

// ---- CertaintyEquivalent --------------------------------------------------------

CertaintyEquivalent::CertaintyEquivalent(CertaintyEquivalentOptions options) : options_(options) {
  METALEARN_CHECK(options_.epsilon >= 0.0 && options_.epsilon <= 1.0, ValueError,
                  "CertaintyEquivalent: epsilon must be in [0, 1], got ", options_.epsilon);
  check_prior(options_.prior, "CertaintyEquivalent");
}

void CertaintyEquivalent::begin_trial(const EnvSpec& spec, Generator gen) {
  check_spec(spec, "CertaintyEquivalent::begin_trial");
  spec_ = spec;
  posterior_ = TabularPosterior(spec.observations, spec.actions, options_.prior);
  gen_ = gen;
  q_.clear();
  t_ = 0;
}

void CertaintyEquivalent::begin_episode() {
  METALEARN_CHECK(posterior_.states() >= 1, ValueError,
                  "CertaintyEquivalent::begin_episode: begin_trial was not called");
  posterior_.mean(rewards_, transitions_);
  q_ = finite_horizon_q(rewards_, transitions_, spec_.observations, spec_.actions, spec_.horizon);
  t_ = 0;
}

Index CertaintyEquivalent::act(Index observation) {
  check_step(spec_, t_, observation, "CertaintyEquivalent::act");
  METALEARN_CHECK(!q_.empty(), ValueError,
                  "CertaintyEquivalent::act: begin_episode was not called");
  if (options_.epsilon > 0.0 && gen_.uniform() < options_.epsilon) {
    return gen_.randint(0, spec_.actions - 1);
  }
  return greedy_action(q_, spec_, t_, observation, gen_);
}

void CertaintyEquivalent::observe(Index observation, Index action, double reward,
                                  Index next_observation, bool /*done*/) {
  posterior_.update(observation, action, reward, next_observation);
  ++t_;
}

}  // namespace metalearn::env
