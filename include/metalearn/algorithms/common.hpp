#pragma once
// What every meta-learning algorithm shares: the step statistics, the evaluation
// summary (mean and 95% confidence interval), the task loss, and the evaluation
// loop over a task sampler.

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/data/task_sampler.hpp"
#include "metalearn/tensor/ops/loss.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::algorithms {

/// Statistics of one meta-step, averaged over the tasks of the meta-batch.
struct StepStats {
  double meta_loss = 0.0;       ///< the loss that was differentiated (query, after adaptation)
  double pre_loss = 0.0;        ///< query loss before adaptation
  double post_loss = 0.0;       ///< query loss after adaptation
  double pre_accuracy = -1.0;   ///< query accuracy before adaptation (-1: regression)
  double post_accuracy = -1.0;  ///< query accuracy after adaptation (-1: regression)
  std::size_t tasks = 0;        ///< tasks in the meta-batch
};

/// Mean of a per-episode metric with the half-width of its 95% confidence interval
/// (1.96 standard errors), as reported in the few-shot literature.
struct EvalResult {
  double mean = 0.0;
  double ci95 = 0.0;
  std::size_t episodes = 0;
  std::vector<double> values;  ///< one value per episode

  static EvalResult from_values(std::vector<double> v) {
    EvalResult r;
    r.episodes = v.size();
    if (v.empty()) return r;
    double s = 0.0;
    for (double x : v) s += x;
    r.mean = s / static_cast<double>(v.size());
    if (v.size() > 1) {
      double ss = 0.0;
      for (double x : v) ss += (x - r.mean) * (x - r.mean);
      const double sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
      r.ci95 = 1.96 * sd / std::sqrt(static_cast<double>(v.size()));
    }
    r.values = std::move(v);
    return r;
  }
};

/// The task loss: mean squared error (regression) or cross-entropy over integral
/// labels (classification), or any callable (prediction, target) -> scalar.
enum class LossKind { kMse, kCrossEntropy };

template <class T>
using LossFunction = std::function<Tensor<T>(const Tensor<T>& prediction, const Tensor<T>& target)>;

template <class T>
LossFunction<T> make_loss(LossKind kind) {
  if (kind == LossKind::kCrossEntropy) {
    return [](const Tensor<T>& logits, const Tensor<T>& labels) {
      return cross_entropy(logits, labels);
    };
  }
  return [](const Tensor<T>& pred, const Tensor<T>& target) { return mse_loss(pred, target); };
}

/// The loss an algorithm's options select: the custom callable when set, else the
/// built-in kind.
template <class T>
LossFunction<T> select_loss(const LossFunction<T>& custom, LossKind kind) {
  return custom ? custom : make_loss<T>(kind);
}

/// True when query accuracy is reported: the built-in cross-entropy (a custom loss
/// says nothing about what its predictions mean).
template <class T>
bool reports_accuracy(const LossFunction<T>& custom, LossKind kind) {
  return !custom && kind == LossKind::kCrossEntropy;
}

/// Accuracy of logits [N, C] against a tensor of integral labels.
template <class T>
double label_accuracy(const Tensor<T>& logits, const Tensor<T>& labels) {
  return accuracy(logits, to_labels(labels));
}

/// The generator of evaluation episode i: independent of training streams and of
/// how many episodes were drawn before.
inline Generator episode_generator(std::uint64_t seed, std::size_t episode) {
  return Generator(derive_seed({seed, static_cast<std::uint64_t>(data::Split::test),
                                0x65'76'61'6CULL, static_cast<std::uint64_t>(episode)}));
}

}  // namespace metalearn::algorithms
