#pragma once
/// @file
/// The Agent concept (what the evaluator runs through a trial) and RandomAgent.

#include <concepts>

#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/shape.hpp"
#include "metalearn/env/environment.hpp"

namespace metalearn::env {

/// An agent acting in one environment through one trial.
///
/// - `begin_trial(spec, gen)` forgets everything learnt and takes the trial's random
///   stream `gen` (an agent draws from nothing else, so a trial is reproducible and
///   agents share no state);
/// - `begin_episode()` is called before the first step of every episode;
/// - `act(observation)` chooses an action;
/// - `observe(observation, action, reward, next_observation, done)` reports the step.
///
/// Agents are copied: the evaluator copies a configured prototype for every trial.
template <class A>
concept Agent = std::copy_constructible<A> &&
                requires(A& a, const EnvSpec& spec, Generator gen, Index i, double r, bool d) {
                  { a.begin_trial(spec, gen) } -> std::same_as<void>;
                  { a.begin_episode() } -> std::same_as<void>;
                  { a.act(i) } -> std::same_as<Index>;
                  { a.observe(i, i, r, i, d) } -> std::same_as<void>;
                };

/// Chooses every action uniformly at random, for bandits and MDPs alike.
class METALEARN_API RandomAgent {
 public:
  /// Takes the trial's random stream.
  void begin_trial(const EnvSpec& spec, Generator gen);
  /// Nothing to do.
  void begin_episode() {}
  /// A uniform action in [0, actions).
  Index act(Index observation);
  /// Nothing to learn.
  void observe(Index /*observation*/, Index /*action*/, double /*reward*/,
               Index /*next_observation*/, bool /*done*/) {}

 private:
  Index actions_ = 1;
  Generator gen_;
};

static_assert(Agent<RandomAgent>);

}  // namespace metalearn::env
