#pragma once
// The meta-learner contract: what every algorithm of the library offers, so that one
// training loop, one checkpoint format and a data-parallel trainer serve them all.
//
//   MetaGradient g = learner.meta_gradient(batch);  // computes, changes nothing
//   learner.apply(g);                               // one outer update
//   learner.meta_step(batch);                       // the two together
//   auto adapted = learner.adapt(task);             // what the learner predicts from
//   Tensor y = learner.predict(adapted, x);
//   EvalResult r = learner.evaluate(sampler, 600);  // mean and 95% interval
//   LearnerState s = learner.state();               // everything a resumed run needs
//   other.load_state(s);                            // continues bit for bit
//
// The split between meta_gradient() and apply() is where a data-parallel trainer sums
// the gradients of its processes: MetaGradient holds sums over tasks and the task
// count, so the sums of several meta-batches add up to the sum of their union.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "metalearn/algorithms/common.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/data/task_sampler.hpp"
#include "metalearn/nn/param_dict.hpp"
#include "metalearn/optim/optimizer.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::algorithms {

/// What meta_gradient() computes from a meta-batch, before anything is applied.
template <class T = float>
struct MetaGradient {
  /// One entry per meta-parameter, named and ordered as the learner's
  /// meta_parameters(): the sum over the tasks of each task's gradient (for Reptile,
  /// of theta - phi_i, the direction its outer step descends).
  nn::ParamDict<T> sum;
  /// The number of tasks summed into `sum`; apply() descends along sum / tasks.
  std::size_t tasks = 0;
  /// The step's statistics (means over the tasks).
  StepStats stats;
  /// State an algorithm carries from task to task during the meta-batch (Reptile's
  /// carry_inner_state()); apply() makes it the learner's.
  std::optional<optim::OptimizerState<T>> carried;

  /// The mean gradient sum / tasks, one tensor per entry in the order of `sum`.
  [[nodiscard]] std::vector<Tensor<T>> mean() const {
    METALEARN_CHECK(tasks > 0, ValueError, "MetaGradient::mean: no tasks were summed");
    const T scale = T(1) / static_cast<T>(tasks);
    std::vector<Tensor<T>> out;
    out.reserve(sum.size());
    for (const auto& [name, g] : sum) out.push_back(mul_scalar(g, scale));
    return out;
  }
};

/// Everything a run needs to continue exactly where it stopped, for one checkpoint
/// file: the meta-parameters (named as meta_parameters(): the model's parameters and
/// any learned learning rates), the model's buffers (batch-norm running statistics),
/// the outer optimizer's state (moments, step count, learning rate), an inner
/// optimizer state carried across tasks, and the number of meta-steps taken (which
/// fixes schedules and the position of the task stream).
template <class T = float>
struct LearnerState {
  nn::ParamDict<T> parameters;
  nn::ParamDict<T> buffers;
  std::optional<optim::OptimizerState<T>> optimizer;
  std::optional<optim::OptimizerState<T>> inner_optimizer;
  std::int64_t steps = 0;
};

/// The contract. `L::value_type` is the scalar type; `L::Adapted` is what adapt()
/// returns (fast weights for MAML and Reptile, a prototype classifier for ProtoNet).
template <class L>
concept MetaLearner =
    requires(L& learner, const L& cl, const data::TaskBatch<typename L::value_type>& batch,
             const MetaGradient<typename L::value_type>& gradient,
             const data::Task<typename L::value_type>& task, const typename L::Adapted& adapted,
             const Tensor<typename L::value_type>& x,
             const data::AnyTaskSampler<typename L::value_type>& sampler,
             const LearnerState<typename L::value_type>& state) {
      { cl.meta_gradient(batch) } -> std::same_as<MetaGradient<typename L::value_type>>;
      { learner.apply(gradient) } -> std::same_as<void>;
      { learner.meta_step(batch) } -> std::same_as<StepStats>;
      { cl.adapt(task) } -> std::same_as<typename L::Adapted>;
      { cl.predict(adapted, x) } -> std::same_as<Tensor<typename L::value_type>>;
      { cl.evaluate(sampler, std::size_t{1}) } -> std::same_as<EvalResult>;
      { cl.state() } -> std::same_as<LearnerState<typename L::value_type>>;
      { learner.load_state(state) } -> std::same_as<void>;
      { cl.meta_parameters() } -> std::same_as<nn::ParamDict<typename L::value_type>>;
      { cl.steps_taken() } -> std::same_as<std::int64_t>;
    };

namespace detail {

/// Checks that `gradient` fits `meta` (the learner's meta-parameters): the same
/// names in the same order, the same shapes, at least one task. Throws ValueError or
/// ShapeError naming `function` and the entry otherwise.
template <class T>
void check_meta_gradient(const MetaGradient<T>& gradient, const nn::ParamDict<T>& meta,
                         const std::string& function) {
  METALEARN_CHECK(gradient.tasks > 0, ValueError, function,
                  ": the meta-gradient sums no tasks (tasks == 0)");
  METALEARN_CHECK(gradient.sum.size() == meta.size(), ValueError, function,
                  ": the meta-gradient has ", gradient.sum.size(), " entries but the learner has ",
                  meta.size(), " meta-parameters (a gradient of another learner?)");
  auto g = gradient.sum.begin();
  for (const auto& [name, p] : meta) {
    const auto& [gname, gt] = *g;
    METALEARN_CHECK(gname == name, ValueError, function, ": meta-gradient entry '", gname,
                    "' where the learner's meta-parameter '", name, "' is expected");
    METALEARN_CHECK(gt.defined() && gt.shape() == p.shape(), ShapeError, function,
                    ": meta-gradient entry '", name, "' has shape ",
                    gt.defined() ? gt.shape() : Shape{}, " but the meta-parameter has shape ",
                    p.shape());
    ++g;
  }
}

/// The entries of `dict` that hold a tensor (a module may list a buffer it has not
/// created yet), deep-copied.
template <class T>
nn::ParamDict<T> defined_copies(const nn::ParamDict<T>& dict) {
  nn::ParamDict<T> out;
  for (const auto& [name, t] : dict) {
    if (t.defined()) out.insert(name, t.clone());
  }
  return out;
}

/// The entries of `dict` that hold a tensor, sharing their storage.
template <class T>
nn::ParamDict<T> defined_entries(const nn::ParamDict<T>& dict) {
  nn::ParamDict<T> out;
  for (const auto& [name, t] : dict) {
    if (t.defined()) out.insert(name, t);
  }
  return out;
}

}  // namespace detail

}  // namespace metalearn::algorithms
