#pragma once
/// @file
/// What every meta-learning algorithm shares: the step statistics, the evaluation
/// summary (mean and 95% confidence interval), the task loss, and the evaluation
/// loop over a task sampler.

#include <cmath>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/thread_pool.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/data/task_sampler.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/nn/param_dict.hpp"
#include "metalearn/nn/task_batched.hpp"
#include "metalearn/optim/optimizer.hpp"
#include "metalearn/tensor/ops/elementwise.hpp"
#include "metalearn/tensor/ops/loss.hpp"
#include "metalearn/tensor/ops/shape_ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::algorithms {

/// The number of threads `threads` asks for (0 means 1); ValueError naming
/// `function` when it is negative.
inline std::size_t thread_count(int threads, const char* function) {
  METALEARN_CHECK(threads >= 0, ValueError, function, ": threads must be >= 0 (0 or 1: run on ",
                  "the calling thread), got ", threads);
  return static_cast<std::size_t>(threads > 0 ? threads : 1);
}

namespace detail {

/// The index of the first NaN or infinite element of `t`, or -1.
template <class T>
Index first_non_finite(const Tensor<T>& t) {
  if (!t.defined()) return -1;
  const T* p = t.data();
  const Index n = t.numel();
  for (Index i = 0; i < n; ++i) {
    if (!std::isfinite(p[i])) return i;
  }
  return -1;
}

/// Throws NonFiniteError naming `function`, what the tensors are (`what`) and the
/// first one of `tensors` (named by `names`) that holds a NaN or an infinity.
template <class T>
void check_all_finite(const std::vector<std::string>& names, const std::vector<Tensor<T>>& tensors,
                      const std::string& function, const char* what, const char* after) {
  for (std::size_t j = 0; j < tensors.size(); ++j) {
    const Index i = first_non_finite(tensors[j]);
    if (i >= 0) [[unlikely]] {
      metalearn::detail::throw_error<NonFiniteError>(
          function, ": ", what, " '", j < names.size() ? names[j] : std::to_string(j), "' holds ",
          tensors[j].data()[i], " at element ", i, " (shape ", tensors[j].shape(), ")", after,
          "; the parameters and the optimizer state are unchanged. Look for NaN or infinite "
          "task data or lower the learning rate (check_finite(false) turns this check off)");
    }
  }
}

/// The finite check of a meta-step. When enabled it snapshots the parameters, the
/// buffers (batch-norm running statistics, which the step's forward passes update)
/// and the optimizer's state before the step; a non-finite meta-gradient, updated
/// parameter or buffer then restores the snapshot and throws NonFiniteError naming
/// the first non-finite tensor.
template <class T>
class FiniteStepGuard {
 public:
  FiniteStepGuard(bool enabled, const nn::ParamDict<T>& params, optim::Optimizer<T>* optimizer,
                  const nn::ParamDict<T>& buffers = {})
      : enabled_(enabled), optimizer_(optimizer) {
    if (!enabled_) return;
    for (const auto& [name, t] : params) {
      names_.emplace_back(name);
      params_.push_back(t);
      saved_.push_back(t.clone());
    }
    for (const auto& [name, t] : buffers) {
      if (!t.defined()) continue;
      buffer_names_.emplace_back(name);
      buffers_.push_back(t);
      saved_buffers_.push_back(t.clone());
    }
    if (optimizer_ != nullptr) state_ = optimizer_->state();
  }
  /// Restores the buffers' snapshot (a step that failed before its update).
  void restore_buffers() const {
    if (enabled_) copy_back(buffers_, saved_buffers_);
  }
  /// Throws when a gradient is not finite, after restoring the buffers (the
  /// parameters and the optimizer have not changed yet); `what` names what the
  /// tensors are in the message.
  void check_gradients(const std::vector<Tensor<T>>& grads, const std::string& function,
                       const char* what = "the meta-gradient of") const {
    if (!enabled_) return;
    for (const auto& g : grads) {
      if (first_non_finite(g) >= 0) [[unlikely]] {
        copy_back(buffers_, saved_buffers_);
        check_all_finite(names_, grads, function, what, "");
      }
    }
  }
  /// Throws after restoring the snapshot when an updated parameter or a buffer is
  /// not finite.
  void check_updated(const std::string& function) const {
    if (!enabled_) return;
    for (const auto* group : {&params_, &buffers_}) {
      for (const auto& p : *group) {
        if (first_non_finite(p) < 0) [[likely]] {
          continue;
        }
        const std::vector<Tensor<T>> params = clone_all(params_);
        const std::vector<Tensor<T>> buffers = clone_all(buffers_);
        copy_back(params_, saved_);
        copy_back(buffers_, saved_buffers_);
        if (optimizer_ != nullptr) {
          optimizer_->zero_grad();
          optimizer_->load_state(state_);
        }
        check_all_finite(names_, params, function, "the updated parameter", " after the update");
        check_all_finite(buffer_names_, buffers, function, "the buffer", " after the step");
      }
    }
  }

 private:
  static std::vector<Tensor<T>> clone_all(const std::vector<Tensor<T>>& ts) {
    std::vector<Tensor<T>> out;
    for (const auto& t : ts) out.push_back(t.clone());
    return out;
  }
  static void copy_back(const std::vector<Tensor<T>>& to, const std::vector<Tensor<T>>& from) {
    autograd::NoGradGuard no_grad;
    for (std::size_t j = 0; j < to.size(); ++j) {
      std::copy_n(from[j].data(), from[j].numel(), to[j].data());
      to[j].bump_version();
    }
  }
  bool enabled_;
  optim::Optimizer<T>* optimizer_;
  std::vector<std::string> names_;
  std::vector<Tensor<T>> params_;
  std::vector<Tensor<T>> saved_;
  std::vector<std::string> buffer_names_;
  std::vector<Tensor<T>> buffers_;
  std::vector<Tensor<T>> saved_buffers_;
  optim::OptimizerState<T> state_;
};

}  // namespace detail

/// Statistics of one meta-step, averaged over the tasks of the meta-batch.
struct StepStats {
  double meta_loss = 0.0;  ///< the loss that was differentiated (query, after adaptation)
  double post_loss = 0.0;  ///< query loss after adaptation
  /// Query loss before adaptation; empty when not measured (Maml measures it only
  /// with MamlOptions::pre_adaptation_stats).
  std::optional<double> pre_loss;
  /// Query accuracy before adaptation; empty for regression or when not measured.
  std::optional<double> pre_accuracy;
  /// Query accuracy after adaptation; empty for regression.
  std::optional<double> post_accuracy;
  /// Mean total reward per trial of the trials the step collected; set by the
  /// learners of environment families (EnvironmentMetaLearner), empty otherwise.
  std::optional<double> mean_return;
  std::size_t tasks = 0;  ///< tasks (for an environment learner: trials) in the meta-batch
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

/// The task loss: mean squared error (regression) or cross-entropy over class labels
/// (classification), or any callable (prediction, target values) -> scalar.
enum class LossKind { kMse, kCrossEntropy };

/// A custom loss: (prediction, target values) -> scalar. It scores regression targets;
/// classification tasks (which carry class labels) take the built-in cross-entropy.
template <class T>
using LossFunction = std::function<Tensor<T>(const Tensor<T>& prediction, const Tensor<T>& target)>;

/// What the predictions for one set are scored against: its target values (regression)
/// or its class labels (classification). Exactly one of the two is set.
template <class T>
struct Targets {
  Tensor<T> values;
  Labels labels;

  /// The support set's targets of `task`.
  static Targets support(const data::Task<T>& task) {
    return {task.support_y, task.support_labels};
  }
  /// The query set's targets of `task`.
  static Targets query(const data::Task<T>& task) { return {task.query_y, task.query_labels}; }

  /// True when the set carries class labels.
  [[nodiscard]] bool labelled() const noexcept { return !labels.empty(); }
  /// The rows `rows` of the targets, in that order.
  [[nodiscard]] Targets rows(const std::vector<Index>& rows) const {
    if (!labelled()) return {index_select(values, 0, rows), {}};
    Labels picked;
    picked.reserve(rows.size());
    for (const Index r : rows) picked.push_back(labels.at(static_cast<std::size_t>(r)));
    return {Tensor<T>(), std::move(picked)};
  }
  /// The targets of several sets of equal shape, one after the other (values
  /// [sets * n, ...], labels concatenated).
  static Targets join(const std::vector<Targets>& parts) {
    Targets all;
    if (parts.empty()) return all;
    if (!parts.front().labelled()) {
      std::vector<Tensor<T>> values;
      values.reserve(parts.size());
      for (const Targets& p : parts) values.push_back(p.values);
      all.values = flatten(stack(values, 0), 0, 1);
      return all;
    }
    for (const Targets& p : parts)
      all.labels.insert(all.labels.end(), p.labels.begin(), p.labels.end());
    return all;
  }
};

/// The loss of predictions against a set's targets, as an algorithm's options select
/// it: the custom callable when set (on target values), else the built-in kind.
template <class T>
class SelectedLoss {
 public:
  /// `owner` is the algorithm named in errors, with the option that fixes them.
  SelectedLoss(LossFunction<T> custom, LossKind kind, const char* owner)
      : custom_(std::move(custom)), kind_(kind), owner_(owner) {}

  /// The loss of `prediction` against `target`.
  /// @throws ShapeError when the targets are not what the loss takes (class labels for
  ///   a regression loss, or the reverse) or their count does not match.
  Tensor<T> operator()(const Tensor<T>& prediction, const Targets<T>& target) const {
    if (!custom_ && kind_ == LossKind::kCrossEntropy) {
      METALEARN_CHECK(target.labelled(), ShapeError, owner_,
                      ": the loss is cross-entropy (LossKind::kCrossEntropy), which takes class "
                      "labels, but the task carries target values ",
                      target.values.defined() ? target.values.shape() : Shape{},
                      "; for regression targets set .loss = LossKind::kMse in the options");
      METALEARN_CHECK(prediction.dim() == 2 && prediction.size(1) > 1 &&
                          static_cast<std::size_t>(prediction.size(0)) == target.labels.size(),
                      ShapeError, owner_,
                      ": the loss is cross-entropy (LossKind::kCrossEntropy), which takes "
                      "logits [N, C] and N class labels, but the model gives ",
                      prediction.shape(), " for ", target.labels.size(), " labels");
      return cross_entropy(prediction, target.labels);
    }
    METALEARN_CHECK(
        !target.labelled(), ShapeError, owner_, ": the loss is ",
        custom_ ? "the custom_loss, which scores target values,"
                : "the mean squared error (LossKind::kMse), which takes target values,",
        " but the task carries ", target.labels.size(),
        " class labels; for classification set .loss = LossKind::kCrossEntropy in the options");
    if (custom_) return custom_(prediction, target.values);
    METALEARN_CHECK(prediction.shape() == target.values.shape(), ShapeError, owner_,
                    ": the loss is the mean squared error (LossKind::kMse), which takes "
                    "predictions of the targets' shape, but the model gives ",
                    prediction.shape(), " for targets ", target.values.shape());
    return mse_loss(prediction, target.values);
  }

  /// True when query accuracy is reported: the built-in cross-entropy (a custom loss
  /// says nothing about what its predictions mean).
  [[nodiscard]] bool classifying() const noexcept {
    return !custom_ && kind_ == LossKind::kCrossEntropy;
  }

 private:
  LossFunction<T> custom_;
  LossKind kind_;
  const char* owner_;
};

/// The tasks of a meta-batch stacked for a task-batched forward
/// (nn::TaskBatched): inputs [tasks, n, ...], targets flattened to
/// [tasks * n, ...] (labels concatenated), so that a built-in loss over all rows is
/// the mean of the tasks' losses. tasks == 0 marks a single task stored as is.
template <class T>
struct StackedTasks {
  Tensor<T> support_x;
  Targets<T> support_y;
  Tensor<T> query_x;
  Targets<T> query_y;
  Index tasks = 0;

  /// A single task, stored as is.
  static StackedTasks single(const data::Task<T>& task) {
    return {task.support_x, Targets<T>::support(task), task.query_x, Targets<T>::query(task), 0};
  }
};

/// Checks that `model` and `loss` allow a batch_tasks option: a model whose every
/// module has a batched rule (nn::TaskBatched::fused(); otherwise the option would
/// run the tasks one by one in a single graph, slower than without it) and a
/// built-in loss (whose value over stacked tasks is the mean of theirs).
/// @throws ValueError naming `who` otherwise.
template <class T>
void check_task_batching(const char* who, const nn::Module<T>& model,
                         const LossFunction<T>& custom_loss) {
  METALEARN_CHECK(nn::TaskBatched<T>(model).fused(), ValueError, who,
                  ": batch_tasks needs a model made of modules with a batched rule (Linear, "
                  "the elementwise activations, Sequential or MLP of them); ",
                  model.type_name(), " is not");
  METALEARN_CHECK(!custom_loss, ValueError, who,
                  ": batch_tasks needs a built-in loss (the loss of the stacked tasks must be the "
                  "mean of their losses)");
}

/// Stacks the tasks of `batch` (query sets may be absent, in every task or none).
/// @throws ShapeError naming `who` and the task when shapes differ.
template <class T>
StackedTasks<T> stack_tasks(const data::TaskBatch<T>& batch, const char* who) {
  METALEARN_CHECK(!batch.empty(), ValueError, who, ": empty task batch");
  const auto gather = [&](const Tensor<T> data::Task<T>::*member, const char* what, bool targets) {
    const Tensor<T>& first = batch[0].*member;
    std::vector<Tensor<T>> parts;
    parts.reserve(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const Tensor<T>& t = batch[i].*member;
      METALEARN_CHECK(
          t.defined() == first.defined() && (!t.defined() || t.shape() == first.shape()),
          ShapeError, who, ": the ", what, " of task ", i, " has shape ",
          t.defined() ? t.shape() : Shape{}, t.defined() ? "" : " (absent)", " but task 0's has ",
          first.defined() ? first.shape() : Shape{}, first.defined() ? "" : " (absent)",
          "; stacked tasks must have equal shapes");
      parts.push_back(t);
    }
    if (!first.defined()) return Tensor<T>();
    const Tensor<T> all = stack(parts, 0);
    return targets ? flatten(all, 0, 1) : all;
  };
  const auto concat = [&](const Labels data::Task<T>::*member, const char* what) {
    const std::size_t n = (batch[0].*member).size();
    Labels all;
    all.reserve(n * batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const Labels& l = batch[i].*member;
      METALEARN_CHECK(l.size() == n, ShapeError, who, ": task ", i, " has ", l.size(), " ", what,
                      " but task 0 has ", n, "; stacked tasks must have equal shapes");
      all.insert(all.end(), l.begin(), l.end());
    }
    return all;
  };
  return StackedTasks<T>{gather(&data::Task<T>::support_x, "support inputs", false),
                         {gather(&data::Task<T>::support_y, "support targets", true),
                          concat(&data::Task<T>::support_labels, "support labels")},
                         gather(&data::Task<T>::query_x, "query inputs", false),
                         {gather(&data::Task<T>::query_y, "query targets", true),
                          concat(&data::Task<T>::query_labels, "query labels")},
                         static_cast<Index>(batch.size())};
}

/// One copy of every tensor of `theta` per task, [tasks, ...its shape]. The copies
/// are recorded, so gradients w.r.t. them sum into theta.
template <class T>
nn::ParamDict<T> per_task_copies(const nn::ParamDict<T>& theta, Index tasks) {
  std::vector<Tensor<T>> copies;
  copies.reserve(theta.size());
  for (const auto& [name, p] : theta) {
    std::vector<Index> dims{tasks};
    for (Index d : p.shape().dims()) dims.push_back(d);
    copies.push_back(expand(p, Shape(dims)));
  }
  return theta.with_values(std::move(copies));
}

/// The model's output for `x`: forward() for a single task (tasks == 0), else the
/// task-batched forward with the rows of all tasks flattened to [tasks * n, ...].
template <class T>
Tensor<T> model_outputs(const nn::Module<T>& model, const Tensor<T>& x,
                        const nn::ParamDict<T>& params, Index tasks) {
  if (tasks == 0) return model.forward(x, params);
  return flatten(nn::TaskBatched<T>(model).forward(x, params), 0, 1);
}

/// Folds the results of a meta-batch's tasks in task order as the tasks finish, on
/// whichever thread finishes them. A result waits only until the results before it
/// are folded, so a meta-batch holds a few results at a time instead of all of them,
/// and the fold sees the same order whatever the thread count.
template <class R>
class OrderedFold {
 public:
  OrderedFold(std::size_t tasks, std::function<void(R&&)> fold)
      : pending_(tasks), fold_(std::move(fold)) {}

  /// Hands over task i's result (each i once).
  void put(std::size_t i, R result) {
    const std::lock_guard<std::mutex> lock(mutex_);
    pending_[i] = std::move(result);
    while (next_ < pending_.size() && pending_[next_].has_value()) {
      fold_(std::move(*pending_[next_]));
      pending_[next_].reset();
      ++next_;
    }
  }

 private:
  std::mutex mutex_;
  std::vector<std::optional<R>> pending_;
  std::function<void(R&&)> fold_;
  std::size_t next_ = 0;
};

/// Runs fn(i) for the n tasks of a meta-batch on `pool`: whole rounds side by side, one
/// task per thread. A task left over after the last whole round (n = 1, or 5 tasks on 2
/// threads) runs alone with its operations split over the pool (IntraOpScope), instead
/// of on one thread while the others wait. Either way a task computes the same bits.
inline void run_tasks(ThreadPool& pool, std::size_t n, const std::function<void(std::size_t)>& fn) {
  const std::size_t threads = pool.size();
  const std::size_t alone = threads > 1 && n % threads == 1 ? 1 : 0;
  pool.run(n - alone, fn);
  if (alone == 1) {
    const IntraOpScope intra_op(&pool);
    fn(n - 1);
  }
}

/// Adds a task's gradients into the running sums, slot by slot (undefined entries
/// are parameters the task's loss does not reach).
template <class T>
void add_gradients(std::vector<Tensor<T>>& sums, std::vector<Tensor<T>>& grads) {
  for (std::size_t j = 0; j < sums.size(); ++j) {
    if (grads[j].defined()) add_to(sums[j], std::exchange(grads[j], Tensor<T>()));
  }
}

/// The generator of evaluation episode i: task i of the test stream of `seed`
/// (data::task_generator), the seeding of every other task of the library, so the
/// episodes are those a data::MetaBatchSampler of batch 1 over the test split draws,
/// independent of how many episodes were drawn before.
inline Generator episode_generator(std::uint64_t seed, std::size_t episode) {
  return data::task_generator(seed, data::Split::kTest, episode);
}

}  // namespace metalearn::algorithms
