#pragma once
/// @file
/// The recurrent policy of RL^2 (Duan et al. 2016): a GRU whose input at each step is
/// (one-hot observation, one-hot previous action, previous reward, previous done flag),
/// followed by a policy head (categorical logits) and a value head; Rl2Agent runs it
/// through trials as an env::Agent, its hidden state carried across the episodes of a
/// trial and reset when a trial begins.
// SPDX-License-Identifier: MIT

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metalearn/autograd/grad_mode.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/shape.hpp"
#include "metalearn/env/agent.hpp"
#include "metalearn/env/environment.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/nn/modules/gru_cell.hpp"
#include "metalearn/nn/modules/linear.hpp"
#include "metalearn/nn/param_dict.hpp"
#include "metalearn/tensor/factory.hpp"
#include "metalearn/tensor/ops/shape_ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::algorithms {

/// What the policy saw before a step: the previous action (-1 at the first step of a
/// trial), its reward and whether it ended an episode.
struct Rl2Previous {
  Index action = -1;
  double reward = 0.0;
  bool done = false;
};

/// The GRU policy of RL^2 with its policy and value heads. Parameters: `gru.*`
/// (nn::GRUCell, input observations + actions + 2), `policy.*` (nn::Linear hidden ->
/// actions) and `value.*` (nn::Linear hidden -> 1).
///
/// By default both heads read the one GRU, as in the paper. With `separate_value` the
/// value head reads a GRU of its own (`value_gru.*`, the same sizes, registered last), so
/// the value loss trains none of the policy's parameters; the recurrent state carried
/// through a trial is then the two GRUs' hidden states side by side, [N, 2 * hidden]
/// (state_size()): columns [0, hidden) the policy's, [hidden, 2 * hidden) the value's.
template <class T = float>
class Rl2Policy : public nn::Cloneable<Rl2Policy<T>, T> {
 public:
  using nn::Module<T>::forward;

  /// A policy for `observations` observations and `actions` actions with `hidden` GRU
  /// units, initialised from `gen` (gru, policy, value, then value_gru when
  /// `separate_value`). Throws ValueError for sizes < 1.
  Rl2Policy(Index observations, Index actions, Index hidden, Generator& gen,
            bool separate_value = false)
      : observations_(observations),
        actions_(actions),
        hidden_(hidden),
        separate_value_(separate_value) {
    METALEARN_CHECK(observations >= 1 && actions >= 1 && hidden >= 1, ValueError,
                    "Rl2Policy: observations (", observations, "), actions (", actions,
                    ") and hidden (", hidden, ") must be >= 1");
    gru_ =
        this->register_module("gru", std::make_shared<nn::GRUCell<T>>(input_size(), hidden, gen));
    policy_ =
        this->register_module("policy", std::make_shared<nn::Linear<T>>(hidden, actions, gen));
    value_ = this->register_module("value", std::make_shared<nn::Linear<T>>(hidden, 1, gen));
    if (separate_value_) {
      value_gru_ = this->register_module(
          "value_gru", std::make_shared<nn::GRUCell<T>>(input_size(), hidden, gen));
    }
  }

  /// Whether the parameter of this name (as named_parameters() names it) belongs to
  /// the value's network: the parameters of the `value` head, and of `value_gru` with
  /// separate_value.
  [[nodiscard]] static bool value_parameter(std::string_view name) noexcept {
    return name.starts_with("value.") || name.starts_with("value_gru.");
  }

  /// Size of one step's input: observations + actions + 2 (reward, done).
  [[nodiscard]] Index input_size() const noexcept { return observations_ + actions_ + 2; }
  [[nodiscard]] Index observations() const noexcept { return observations_; }
  [[nodiscard]] Index actions() const noexcept { return actions_; }
  /// GRU units of each GRU.
  [[nodiscard]] Index hidden_size() const noexcept { return hidden_; }
  /// Whether the value head has a GRU of its own.
  [[nodiscard]] bool separate_value() const noexcept { return separate_value_; }
  /// Width of the recurrent state step() carries: hidden, or 2 * hidden with separate_value.
  [[nodiscard]] Index state_size() const noexcept {
    return separate_value_ ? 2 * hidden_ : hidden_;
  }

  /// Writes the input of one step into `row` (input_size() values): one-hot
  /// `observation`, one-hot previous action (all zero when there is none), previous
  /// reward, previous done flag. Throws ValueError for an observation or action out of
  /// range.
  void encode(Index observation, const Rl2Previous& previous, T* row) const {
    METALEARN_CHECK(observation >= 0 && observation < observations_ && previous.action >= -1 &&
                        previous.action < actions_,
                    ValueError, "Rl2Policy::encode: observation ", observation, " or action ",
                    previous.action, " out of range for ", observations_, " observations and ",
                    actions_, " actions");
    std::fill(row, row + input_size(), T(0));
    row[observation] = T(1);
    if (previous.action >= 0) row[observations_ + previous.action] = T(1);
    row[observations_ + actions_] = static_cast<T>(previous.reward);
    row[observations_ + actions_ + 1] = previous.done ? T(1) : T(0);
  }

  /// The recurrent state after input x [N, input_size()] from h [N, state_size()].
  Tensor<T> step(const Tensor<T>& x, const Tensor<T>& h, const nn::ParamDict<T>& params) const {
    if (!separate_value_) return this->child(gru_).step(x, h, this->child_params(params, gru_));
    const Tensor<T> hp =
        this->child(gru_).step(x, policy_part(h), this->child_params(params, gru_));
    const Tensor<T> hv =
        this->child(value_gru_).step(x, value_part(h), this->child_params(params, value_gru_));
    return concat<T>({hp, hv}, 1);
  }
  /// The policy's logits [N, actions] at recurrent states h [N, state_size()].
  Tensor<T> logits(const Tensor<T>& h, const nn::ParamDict<T>& params) const {
    return this->forward_child(policy_, separate_value_ ? policy_part(h) : h, params);
  }
  /// The value estimates [N] at recurrent states h [N, state_size()].
  Tensor<T> value(const Tensor<T>& h, const nn::ParamDict<T>& params) const {
    return reshape(this->forward_child(value_, separate_value_ ? value_part(h) : h, params),
                   Shape{h.shape()[0]});
  }

  /// The first step of a trial from the zero hidden state: [logits, value], [N, actions + 1].
  Tensor<T> forward(const Tensor<T>& x, const nn::ParamDict<T>& params) const override {
    METALEARN_CHECK(x.dim() == 2 && x.shape()[1] == input_size(), ShapeError,
                    "Rl2Policy::forward: expected input [N, ", input_size(), "], got ", x.shape());
    const Tensor<T> h = step(x, zeros<T>(Shape{x.shape()[0], state_size()}), params);
    return concat<T>({logits(h, params), reshape(value(h, params), Shape{x.shape()[0], 1})}, 1);
  }

  [[nodiscard]] std::string type_name() const override { return "Rl2Policy"; }
  [[nodiscard]] std::string extra_repr() const override {
    return "observations=" + std::to_string(observations_) +
           ", actions=" + std::to_string(actions_) + ", hidden=" + std::to_string(hidden_) +
           (separate_value_ ? ", separate_value=true" : "");
  }

 private:
  /// The policy's and the value's columns of a separate_value state.
  [[nodiscard]] Tensor<T> policy_part(const Tensor<T>& h) const { return narrow(h, 1, 0, hidden_); }
  [[nodiscard]] Tensor<T> value_part(const Tensor<T>& h) const {
    return narrow(h, 1, hidden_, hidden_);
  }

  Index observations_, actions_, hidden_;
  bool separate_value_ = false;
  nn::Child<nn::GRUCell<T>> gru_;
  nn::Child<nn::Linear<T>> policy_;
  nn::Child<nn::Linear<T>> value_;
  nn::Child<nn::GRUCell<T>> value_gru_;  // separate_value only
};

/// One draw from the categorical distribution of `logits` (`n` values, softmax in
/// double precision) with one uniform draw of `gen` (inverse CDF); returns the action
/// and writes its log-probability to `log_prob`.
template <class T>
Index sample_action(const T* logits, Index n, Generator& gen, double& log_prob) {
  double top = static_cast<double>(logits[0]);
  for (Index i = 1; i < n; ++i) top = std::max(top, static_cast<double>(logits[i]));
  double total = 0.0;
  for (Index i = 0; i < n; ++i) total += std::exp(static_cast<double>(logits[i]) - top);
  const double u = gen.uniform() * total;
  Index action = n - 1;
  double cumulative = 0.0;
  for (Index i = 0; i < n; ++i) {
    cumulative += std::exp(static_cast<double>(logits[i]) - top);
    if (u < cumulative) {
      action = i;
      break;
    }
  }
  log_prob = static_cast<double>(logits[action]) - top - std::log(total);
  return action;
}

/// The RL^2 policy as an env::Agent (for env::run_trial and env::evaluate): the hidden
/// state starts at zero in begin_trial() and is carried through begin_episode(), so
/// what the agent learnt in one episode of a trial stays for the next, and nothing
/// stays from one trial to the next. Actions are sampled from the policy with the
/// trial's generator (sample_action). Copies share the (read-only) policy.
template <class T = float>
class Rl2Agent {
 public:
  /// Runs a snapshot of `policy` (cloned: later training does not change the agent).
  explicit Rl2Agent(const Rl2Policy<T>& policy)
      : policy_(std::shared_ptr<const Rl2Policy<T>>(policy.deep_copy())) {}

  /// Forgets the trial so far (zero hidden state, no previous action) and takes the
  /// trial's random stream. Throws ValueError when the spec's sizes differ from the
  /// policy's.
  void begin_trial(const env::EnvSpec& spec, Generator gen) {
    METALEARN_CHECK(
        spec.observations == policy_->observations() && spec.actions == policy_->actions(),
        ValueError, "Rl2Agent::begin_trial: the environment has ", spec.observations,
        " observations and ", spec.actions, " actions, the policy was built for ",
        policy_->observations(), " and ", policy_->actions());
    gen_ = gen;
    hidden_ = zeros<T>(Shape{1, policy_->state_size()});
    previous_ = Rl2Previous{};
  }
  /// Keeps the hidden state (the point of RL^2).
  void begin_episode() {}
  /// One GRU step on (observation, previous action, reward, done), then a sampled action.
  Index act(Index observation) {
    METALEARN_CHECK(hidden_.defined(), ValueError,
                    "Rl2Agent::act: no trial started (call begin_trial() first)");
    autograd::NoGradGuard no_grad;
    const nn::ParamDict<T> params = policy_->named_parameters();
    Tensor<T> x = zeros<T>(Shape{1, policy_->input_size()});
    policy_->encode(observation, previous_, x.data());
    hidden_ = policy_->step(x, hidden_, params);
    logits_ = policy_->logits(hidden_, params);
    double log_prob = 0.0;
    return sample_action(logits_.data(), policy_->actions(), gen_, log_prob);
  }
  /// Remembers the step's action, reward and done flag for the next input.
  void observe(Index /*observation*/, Index action, double reward, Index /*next_observation*/,
               bool done) {
    previous_ = Rl2Previous{action, reward, done};
  }

  /// The hidden state after the last act() ([1, hidden]; zeros after begin_trial()).
  [[nodiscard]] const Tensor<T>& hidden() const { return hidden_; }
  /// The logits of the last act() ([1, actions]).
  [[nodiscard]] const Tensor<T>& logits() const { return logits_; }

 private:
  std::shared_ptr<const Rl2Policy<T>> policy_;
  Generator gen_;
  Tensor<T> hidden_;
  Tensor<T> logits_;
  Rl2Previous previous_;
};

static_assert(env::Agent<Rl2Agent<float>> && env::Agent<Rl2Agent<double>>);

}  // namespace metalearn::algorithms
