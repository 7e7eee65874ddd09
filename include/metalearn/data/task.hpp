#pragma once
/// @file
/// Task<T> and TaskBatch<T>: the unit of work every meta-learning algorithm consumes.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/core/shape.hpp"
#include "metalearn/core/split.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::data {

/// Which stream of tasks a sampler draws from (core/split.hpp).
using metalearn::Split;

/// One few-shot task: a support set to adapt on and a query set to evaluate on.
///
/// Layout conventions (shared by every task family in this layer):
/// - regression: `support_x`/`query_x` are [K, 1] (or [K, D]), targets `support_y`/`query_y`
///   are [K, 1]; the label vectors are empty;
/// - classification: inputs are NCHW images [K, C, H, W]; `support_labels`/`query_labels`
///   hold one class index 0..ways-1 per example (what `cross_entropy(logits, labels)`
///   takes); `support_y`/`query_y` are undefined; `classes[label]` is the dataset class
///   the label stands for.
///
/// @tparam T float or double.
template <class T>
struct Task {
  using value_type = T;

  Tensor<T> support_x;
  /// Regression targets of the support set; undefined for classification.
  Tensor<T> support_y;
  Tensor<T> query_x;
  /// Regression targets of the query set; undefined for classification.
  Tensor<T> query_y;
  /// Class labels of the support set (classification); empty for regression.
  Labels support_labels;
  /// Class labels of the query set (classification); empty for regression.
  Labels query_labels;

  /// Number of classes (classification) or 1 (regression).
  Index ways = 0;
  /// Support examples per class (classification) or support points (regression).
  Index shots = 0;
  /// Query examples per class (classification) or query points (regression).
  Index queries = 0;
  /// Original dataset class id of every label: `classes[label]`. Empty for regression.
  std::vector<Index> classes;
  /// Parameters of the underlying function, for plotting or analysis, e.g.\ "amplitude"
  /// and "phase" for sinusoids.
  std::map<std::string, double> params;

  /// True for a classification task (its sets carry class labels, not target values).
  [[nodiscard]] bool classification() const noexcept {
    return !support_labels.empty() || !query_labels.empty();
  }

  /// A named parameter of the task; throws ValueError when the family did not set it.
  [[nodiscard]] double param(const std::string& name) const {
    const auto it = params.find(name);
    METALEARN_CHECK(it != params.end(), ValueError, "Task::param: this task has no parameter '",
                    name, "'");
    return it->second;
  }
};

/// The tasks of one meta-batch.
template <class T>
using TaskBatch = std::vector<Task<T>>;

}  // namespace metalearn::data
