#pragma once
/// @file
/// Differentiable losses: mse, cross_entropy (integer class targets),
/// policy_gradient_loss (the REINFORCE surrogate), gaussian_nll.

#include <cmath>
#include <memory>
#include <numbers>
#include <span>
#include <vector>

#include "metalearn/tensor/ops/elementwise.hpp"
#include "metalearn/tensor/ops/reduction.hpp"
#include "metalearn/tensor/ops/shape_ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn {

/// Mean squared error; prediction and target must have the same shape.
template <class T>
Tensor<T> mse_loss(const Tensor<T>& prediction, const Tensor<T>& target) {
  METALEARN_CHECK(prediction.shape() == target.shape(), ShapeError, "mse_loss: prediction ",
                  prediction.shape(), " and target ", target.shape(), " differ");
  return mean(square(sub(prediction, target)));
}

namespace detail {
/// log softmax(logits)[i, picks[i]] for every row i of logits [N, C], as a tensor [N];
/// `who` names the caller in errors.
template <class T>
Tensor<T> picked_log_softmax(const Tensor<T>& logits, const Labels& picks, const char* who) {
  METALEARN_CHECK(logits.dim() == 2, ShapeError, who, ": expected logits [N, C], got ",
                  logits.shape());
  const Index n = logits.shape()[0];
  const Index c = logits.shape()[1];
  METALEARN_CHECK(static_cast<Index>(picks.size()) == n, ShapeError, who, ": ", picks.size(),
                  " targets for logits of shape ", logits.shape());
  METALEARN_CHECK(n > 0, ShapeError, who, ": empty batch");
  auto idx = std::make_shared<std::vector<Index>>(picks.size());
  for (Index i = 0; i < n; ++i) {
    const Index y = picks[static_cast<std::size_t>(i)];
    METALEARN_CHECK(y >= 0 && y < c, ValueError, who, ": target ", y, " at position ", i,
                    " is outside [0, ", c, ")");
    (*idx)[static_cast<std::size_t>(i)] = i * c + y;
  }
  return take(log_softmax(logits, 1), std::shared_ptr<const std::vector<Index>>(std::move(idx)),
              Shape{n});
}
}  // namespace detail

/// Mean cross-entropy of logits [N, C] against class indices in [0, C).
template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const Labels& targets) {
  Tensor<T> picked = detail::picked_log_softmax(logits, targets, "cross_entropy");
  return mul_scalar(sum(picked), T(-1) / static_cast<T>(logits.shape()[0]));
}

/// The REINFORCE surrogate of a categorical policy: -(1/N) sum_i w_i log pi(a_i), with
/// pi = softmax(logits[i]) over logits [N, A], a_i = actions[i] in [0, A) and constant
/// weights w_i (returns or advantages; no gradient flows into them). Its gradient is
/// the score-function estimate of the policy gradient of the mean weighted return, and
/// it is differentiable to any order (a policy-gradient inner loss for MAML).
/// @throws ShapeError when logits are not [N, A] with N = actions.size() =
/// weights.size() > 0, ValueError for an action outside [0, A) or a weight that is not
/// finite.
template <class T>
Tensor<T> policy_gradient_loss(const Tensor<T>& logits, const Labels& actions,
                               std::span<const double> weights) {
  Tensor<T> picked = detail::picked_log_softmax(logits, actions, "policy_gradient_loss");
  const Index n = logits.shape()[0];
  METALEARN_CHECK(static_cast<Index>(weights.size()) == n, ShapeError,
                  "policy_gradient_loss: ", weights.size(), " weights for logits of shape ",
                  logits.shape());
  Tensor<T> w = Tensor<T>::empty(Shape{n});
  for (Index i = 0; i < n; ++i) {
    const double wi = weights[static_cast<std::size_t>(i)];
    METALEARN_CHECK(std::isfinite(wi), ValueError, "policy_gradient_loss: weight ", wi,
                    " at position ", i, " is not finite");
    w.data()[i] = static_cast<T>(wi);
  }
  return mul_scalar(sum(mul(picked, w)), T(-1) / static_cast<T>(n));
}

/// Mean Gaussian negative log-likelihood of `target` under N(mean, variance).
/// With `full`, the constant 0.5 * log(2 pi) is included.
template <class T>
Tensor<T> gaussian_nll_loss(const Tensor<T>& mean_, const Tensor<T>& variance,
                            const Tensor<T>& target, bool full = false, T eps = T(1e-6)) {
  METALEARN_CHECK(mean_.shape() == target.shape(), ShapeError, "gaussian_nll_loss: mean ",
                  mean_.shape(), " and target ", target.shape(), " differ");
  broadcast_shapes(variance.shape(), mean_.shape(), "gaussian_nll_loss");
  for (Index i = 0; i < variance.numel(); ++i) {
    METALEARN_CHECK(variance.data()[i] >= T(0), ValueError, "gaussian_nll_loss: negative variance ",
                    variance.data()[i], " at position ", i);
  }
  Tensor<T> var = clamp(variance, eps, std::numeric_limits<T>::max());
  Tensor<T> r = sub(target, mean_);
  Tensor<T> l = mul_scalar(add(log(var), div(mul(r, r), var)), T(0.5));
  Tensor<T> out = mean(l);
  if (full) out = add_scalar(out, T(0.5) * std::log(T(2) * std::numbers::pi_v<T>));
  return out;
}

/// Fraction of rows of logits [N, C] whose argmax equals the label. Not differentiable.
template <class T>
double accuracy(const Tensor<T>& logits, const Labels& targets) {
  const auto pred = argmax(logits, 1);
  METALEARN_CHECK(pred.size() == targets.size(), ShapeError, "accuracy: ", targets.size(),
                  " targets for logits of shape ", logits.shape());
  std::size_t hit = 0;
  for (std::size_t i = 0; i < pred.size(); ++i) hit += pred[i] == targets[i] ? 1 : 0;
  return pred.empty() ? 0.0 : static_cast<double>(hit) / static_cast<double>(pred.size());
}

}  // namespace metalearn
