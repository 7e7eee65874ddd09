#pragma once
/// @file
/// Differentiable losses: mse, cross_entropy (integer class targets), gaussian_nll.

#include <cmath>
#include <numbers>
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

/// Mean cross-entropy of logits [N, C] against class indices in [0, C).
template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const Labels& targets) {
  METALEARN_CHECK(logits.dim() == 2, ShapeError, "cross_entropy: expected logits [N, C], got ",
                  logits.shape());
  const Index n = logits.shape()[0];
  const Index c = logits.shape()[1];
  METALEARN_CHECK(static_cast<Index>(targets.size()) == n, ShapeError,
                  "cross_entropy: ", targets.size(), " targets for logits of shape ",
                  logits.shape());
  METALEARN_CHECK(n > 0, ShapeError, "cross_entropy: empty batch");
  auto idx = std::make_shared<std::vector<Index>>(targets.size());
  for (Index i = 0; i < n; ++i) {
    const Index y = targets[static_cast<std::size_t>(i)];
    METALEARN_CHECK(y >= 0 && y < c, ValueError, "cross_entropy: target ", y, " at position ", i,
                    " is outside [0, ", c, ")");
    (*idx)[static_cast<std::size_t>(i)] = i * c + y;
  }
  Tensor<T> picked = take(log_softmax(logits, 1),
                          std::shared_ptr<const std::vector<Index>>(std::move(idx)), Shape{n});
  return mul_scalar(sum(picked), T(-1) / static_cast<T>(n));
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
