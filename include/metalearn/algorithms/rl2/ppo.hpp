#pragma once
/// @file
/// The pieces of proximal policy optimisation (Schulman et al. 2017) that RL^2 trains
/// with: generalised advantage estimation over one trial (gae) and the clipped
/// surrogate loss with its value and entropy terms (ppo_loss).
// SPDX-License-Identifier: MIT

#include <cmath>
#include <cstddef>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/core/shape.hpp"
#include "metalearn/tensor/factory.hpp"
#include "metalearn/tensor/ops/elementwise.hpp"
#include "metalearn/tensor/ops/reduction.hpp"
#include "metalearn/tensor/ops/shape_ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::algorithms {

/// The advantages of one trial by generalised advantage estimation (Schulman et al.
/// 2016): with V_n = `last_value` (0 when the trial ends there),
/// @code{.unparsed}
///   delta_t = r_t + gamma V_{t+1} - V_t
///   A_t     = delta_t + gamma lambda A_{t+1}      (A_n = 0)
/// @endcode
/// In RL^2 the whole trial is one episode of the meta-problem: episode boundaries inside
/// a trial do not cut the sums. The value targets are A_t + V_t.
/// @throws ValueError when the sizes differ, or gamma or lambda lie outside [0, 1].
inline std::vector<double> gae(const std::vector<double>& rewards,
                               const std::vector<double>& values, double gamma, double lambda,
                               double last_value = 0.0) {
  METALEARN_CHECK(rewards.size() == values.size(), ValueError, "gae: ", rewards.size(),
                  " rewards but ", values.size(), " values");
  METALEARN_CHECK(gamma >= 0.0 && gamma <= 1.0 && lambda >= 0.0 && lambda <= 1.0, ValueError,
                  "gae: gamma (", gamma, ") and lambda (", lambda, ") must lie in [0, 1]");
  std::vector<double> advantages(rewards.size());
  double next_value = last_value;
  double next_advantage = 0.0;
  for (std::size_t k = rewards.size(); k-- > 0;) {
    const double delta = rewards[k] + gamma * next_value - values[k];
    next_advantage = delta + gamma * lambda * next_advantage;
    advantages[k] = next_advantage;
    next_value = values[k];
  }
  return advantages;
}

/// The coefficients of the PPO loss (see ppo_loss).
struct PpoCoefficients {
  /// The clipping range epsilon of the probability ratio.
  double clip = 0.2;
  /// Weight of the value loss.
  double value_coef = 0.5;
  /// Weight of the entropy bonus.
  double entropy_coef = 0.01;
};

/// What ppo_loss needs besides the network's outputs, one entry per row (time step):
/// the action taken, its log-probability under the policy that collected it, its
/// advantage and its value target.
struct PpoTargets {
  std::vector<Index> actions;
  std::vector<double> old_log_probs;
  std::vector<double> advantages;
  std::vector<double> returns;
};

/// The PPO loss of a set of rows and the sums of its terms over the rows (for
/// statistics; not scaled).
template <class T>
struct PpoLoss {
  /// scale * sum of the per-row losses, differentiable w.r.t. the logits and values.
  Tensor<T> loss;
  double policy_loss = 0.0;  ///< sum of -min(r A, clip(r) A)
  double value_loss = 0.0;   ///< sum of (V - R)^2 / 2
  double entropy = 0.0;      ///< sum of the policy's entropies
  double approx_kl = 0.0;    ///< sum of old log-probability - new log-probability
  double clipped = 0.0;      ///< number of rows whose ratio lies outside [1 - clip, 1 + clip]
};

/// The PPO loss of `logits` [N, A] and `values` [N] given `targets` (N rows each):
/// @code{.unparsed}
///   r_i    = exp(log pi(a_i | .) - old_log_prob_i)
///   loss_i = -min(r_i A_i, clamp(r_i, 1 - clip, 1 + clip) A_i)
///            + value_coef (V_i - R_i)^2 / 2 - entropy_coef H(pi(. | .))_i
///   loss   = scale * sum_i loss_i
/// @endcode
/// The min picks, row by row, the smaller of the two surrogate terms (its gradient is
/// that term's; at a tie both agree); with scale = 1 / N the loss is the rows' mean.
/// The value loss is halved like the reference implementations' (OpenAI baselines,
/// CleanRL).
/// @throws ShapeError when the shapes or the sizes of `targets` differ from N rows;
/// ValueError for an action out of range.
template <class T>
PpoLoss<T> ppo_loss(const Tensor<T>& logits, const Tensor<T>& values, const PpoTargets& targets,
                    const PpoCoefficients& c, double scale) {
  const char* function = "ppo_loss";
  METALEARN_CHECK(logits.defined() && logits.dim() == 2 && values.defined() && values.dim() == 1 &&
                      values.shape()[0] == logits.shape()[0],
                  ShapeError, function, ": logits ", logits.defined() ? logits.shape() : Shape{},
                  " and values ", values.defined() ? values.shape() : Shape{},
                  " must be [N, A] and [N]");
  const Index n = logits.shape()[0];
  const Index a = logits.shape()[1];
  const auto rows = static_cast<std::size_t>(n);
  METALEARN_CHECK(targets.actions.size() == rows && targets.old_log_probs.size() == rows &&
                      targets.advantages.size() == rows && targets.returns.size() == rows,
                  ShapeError, function, ": ", n, " rows of outputs but targets of ",
                  targets.actions.size(), " actions, ", targets.old_log_probs.size(),
                  " log-probabilities, ", targets.advantages.size(), " advantages and ",
                  targets.returns.size(), " returns");
  for (Index action : targets.actions) {
    METALEARN_CHECK(action >= 0 && action < a, ValueError, function, ": action ", action,
                    " out of range for ", a, " actions");
  }
  const auto column = [&](const std::vector<double>& v) {
    std::vector<T> out(v.begin(), v.end());
    return from_vector<T>(out, Shape{n});
  };
  const Tensor<T> log_pi = log_softmax(logits, 1);
  const Tensor<T> log_prob = reshape(gather(log_pi, 1, targets.actions, Shape{n, 1}), Shape{n});
  const Tensor<T> ratio = exp(sub(log_prob, column(targets.old_log_probs)));
  const Tensor<T> advantages = column(targets.advantages);
  const Tensor<T> unclipped = mul(ratio, advantages);
  const T lo = static_cast<T>(1.0 - c.clip);
  const T hi = static_cast<T>(1.0 + c.clip);
  const Tensor<T> clipped = mul(clamp(ratio, lo, hi), advantages);
  // The elementwise min as a constant selection: 1 where the unclipped term is the smaller.
  std::vector<T> pick(rows), other(rows);
  PpoLoss<T> out;
  for (std::size_t i = 0; i < rows; ++i) {
    const bool first = unclipped.data()[i] <= clipped.data()[i];
    pick[i] = first ? T(1) : T(0);
    other[i] = first ? T(0) : T(1);
    const T r = ratio.data()[i];
    out.clipped += (r < lo || r > hi) ? 1.0 : 0.0;
    out.approx_kl += targets.old_log_probs[i] - static_cast<double>(log_prob.data()[i]);
  }
  const Tensor<T> surrogate = add(mul(unclipped, from_vector<T>(pick, Shape{n})),
                                  mul(clipped, from_vector<T>(other, Shape{n})));
  const Tensor<T> entropy = neg(sum(mul(softmax(logits, 1), log_pi), 1));
  const Tensor<T> value_loss =
      mul_scalar(square(sub(values, column(targets.returns))), static_cast<T>(0.5));
  const Tensor<T> per_row =
      sub(add(neg(surrogate), mul_scalar(value_loss, static_cast<T>(c.value_coef))),
          mul_scalar(entropy, static_cast<T>(c.entropy_coef)));
  out.loss = mul_scalar(sum(per_row), static_cast<T>(scale));
  for (std::size_t i = 0; i < rows; ++i) {
    out.policy_loss -= static_cast<double>(surrogate.data()[i]);
    out.value_loss += static_cast<double>(value_loss.data()[i]);
    out.entropy += static_cast<double>(entropy.data()[i]);
  }
  return out;
}

}  // namespace metalearn::algorithms
