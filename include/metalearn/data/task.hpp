#pragma once
/// @file
/// Task<T> and TaskBatch<T>: the unit of work every meta-learning algorithm consumes.

#include <algorithm>
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

/// Which points of a regression task's query set query_part() keeps.
enum class QueryPart {
  kContext,     ///< the context points (the first `shots` rows of the query set)
  kNewTargets,  ///< the targets after them
};

/// A regression task whose query set begins with its support set (the layout of Neural
/// Process tasks, GaussianProcessOptions::targets_include_context) with only the context
/// points, or only the further targets, as its query set: a model's predictive on each,
/// evaluated separately (the ANP paper's context and target log-likelihoods).
/// @throws ShapeError when the query set does not begin with the support set, or the
/// part asked for is empty.
template <class T>
[[nodiscard]] Task<T> query_part(const Task<T>& task, QueryPart part) {
  const char* f = "data::query_part";
  METALEARN_CHECK(!task.classification() && task.support_x.defined() && task.query_x.defined() &&
                      task.support_y.defined() && task.query_y.defined() &&
                      task.support_x.dim() == 2 && task.query_x.dim() == 2 &&
                      task.support_y.dim() == 2 && task.query_y.dim() == 2,
                  ShapeError, f, ": needs a regression task with [n, d] sets");
  const Index c = task.support_x.shape()[0];
  const Index m = task.query_x.shape()[0];
  const Index dx = task.query_x.shape()[1];
  const Index dy = task.query_y.shape()[1];
  METALEARN_CHECK(m >= c && task.support_x.shape()[1] == dx && task.support_y.shape()[1] == dy,
                  ShapeError, f, ": the query set (", task.query_x.shape(),
                  ") does not begin with the support set (", task.support_x.shape(), ")");
  for (Index i = 0; i < c * dx; ++i) {
    METALEARN_CHECK(task.query_x.data()[i] == task.support_x.data()[i], ShapeError, f,
                    ": the query set does not begin with the support set (input ", i / dx,
                    " differs)");
  }
  const Index begin = part == QueryPart::kContext ? 0 : c;
  const Index end = part == QueryPart::kContext ? c : m;
  METALEARN_CHECK(end > begin, ShapeError, f, ": the task has no ",
                  part == QueryPart::kContext ? "context points" : "targets beyond its context");
  const auto rows = [&](const Tensor<T>& t, Index d) {
    Tensor<T> out = Tensor<T>::empty(Shape{end - begin, d});
    const T* from = t.data() + begin * d;
    std::copy(from, from + (end - begin) * d, out.data());
    return out;
  };
  Task<T> out = task;
  out.query_x = rows(task.query_x, dx);
  out.query_y = rows(task.query_y, dy);
  out.queries = end - begin;
  return out;
}

}  // namespace metalearn::data
