#pragma once
/// @file
/// The meta-learner contract: what every algorithm of the library offers, so that one
/// training loop, one checkpoint format and a data-parallel trainer serve them all.
///
/// @code
///   MetaGradient g = learner.meta_gradient(batch);  // computes, changes nothing
///   learner.apply(g);                               // one outer update
///   learner.meta_step(batch);                       // the two together
///   auto adapted = learner.adapt(task);             // what the learner predicts from
///   Tensor y = learner.predict(adapted, x);
///   EvalResult r = learner.evaluate(sampler, 600);  // mean and 95% interval
///   LearnerState s = learner.state();               // everything a resumed run needs
///   other.load_state(s);                            // continues bit for bit
/// @endcode
///
/// A learner of environment families (RL^2) has the same core (LearnerCore: state,
/// meta-parameters, steps) and collects its own tasks instead (EnvironmentMetaLearner):
///
/// @code
///   StepStats s = rl2.meta_step();                  // collect trials, then update
///   auto agent = rl2.agent();                       // adapts by running trials
///   EvalResult r = rl2.evaluate(1000);              // mean reward per trial, 95%
/// @endcode
///
/// The split between meta_gradient() and apply() is where a data-parallel trainer sums
/// the gradients of its processes: MetaGradient holds sums over tasks and the task
/// count, so the sums of several meta-batches add up to the sum of their union.

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "metalearn/algorithms/common.hpp"
#include "metalearn/autograd/grad.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/core/thread_pool.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/data/task_sampler.hpp"
#include "metalearn/env/agent.hpp"
#include "metalearn/env/environment.hpp"
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
  /// carry_inner_state); apply() makes it the learner's.
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

/// One task's differentiable loss and, for a classifier, its accuracy (what
/// ProtoNet::episode_loss and MatchingNet::episode_loss return).
template <class T = float>
struct TaskLoss {
  Tensor<T> loss;
  /// The fraction of the task's queries classified correctly; empty for a learner
  /// that does not classify.
  std::optional<double> accuracy{};
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

/// What every learner offers for checkpoints and the training loop, whatever it learns
/// from: the scalar type `L::value_type`, its meta-parameters, its whole state (saved
/// and loaded all or nothing) and the number of meta-steps taken.
template <class L>
concept LearnerCore =
    requires(L& learner, const L& cl, const LearnerState<typename L::value_type>& state) {
      { cl.state() } -> std::same_as<LearnerState<typename L::value_type>>;
      { learner.load_state(state) } -> std::same_as<void>;
      { cl.meta_parameters() } -> std::same_as<nn::ParamDict<typename L::value_type>>;
      { cl.steps_taken() } -> std::same_as<std::int64_t>;
    };

/// The contract of the learners of supervised tasks. `L::Adapted` is what adapt()
/// returns (fast weights for MAML and Reptile, a prototype classifier for ProtoNet).
template <class L>
concept MetaLearner =
    LearnerCore<L> &&
    requires(L& learner, const L& cl, const data::TaskBatch<typename L::value_type>& batch,
             const MetaGradient<typename L::value_type>& gradient,
             const data::Task<typename L::value_type>& task, const typename L::Adapted& adapted,
             const Tensor<typename L::value_type>& x,
             const data::AnyTaskSampler<typename L::value_type>& sampler) {
      { cl.meta_gradient(batch) } -> std::same_as<MetaGradient<typename L::value_type>>;
      { learner.apply(gradient) } -> std::same_as<void>;
      { learner.meta_step(batch) } -> std::same_as<StepStats>;
      { cl.adapt(task) } -> std::same_as<typename L::Adapted>;
      { cl.predict(adapted, x) } -> std::same_as<Tensor<typename L::value_type>>;
      { cl.evaluate(sampler, std::size_t{1}) } -> std::same_as<EvalResult>;
    };

/// The contract of the learners of environment families (RL^2), whose tasks are
/// environments drawn from `L::family_type` (an env::EnvFamily) rather than data:
/// meta_step() collects its own trials from the family's training stream (positioned
/// by steps_taken(), so a resumed run continues the same stream) and updates, returning
/// StepStats (or a type derived from it) with mean_return set; adapting to an
/// environment is running trials with agent() (an env::Agent, whose state carries what
/// it learnt within a trial); evaluate(trials) is the mean total reward per trial with
/// its 95% interval over fresh environments of the test stream.
template <class L>
concept EnvironmentMetaLearner =
    LearnerCore<L> && env::EnvFamily<typename L::family_type> && requires(L& learner, const L& cl) {
      { learner.meta_step() } -> std::convertible_to<StepStats>;
      { cl.agent() } -> env::Agent;
      { cl.evaluate(std::size_t{1}) } -> std::same_as<EvalResult>;
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

/// Copies each planned (target, value) pair of nn::detail::plan_load into its target,
/// recording the in-place write (Tensor::version()).
template <class T>
void copy_planned(const std::vector<std::pair<Tensor<T>, Tensor<T>>>& plan) {
  autograd::NoGradGuard no_grad;
  for (const auto& [to, from] : plan) {
    std::copy_n(from.data(), from.numel(), to.data());
    to.bump_version();
  }
}

/// A learner state of deep copies of `parameters` and `buffers` (the entries holding a
/// tensor), `optimizer` and `steps`.
template <class T>
LearnerState<T> make_state(const nn::ParamDict<T>& parameters, const nn::ParamDict<T>& buffers,
                           std::optional<optim::OptimizerState<T>> optimizer, std::int64_t steps) {
  LearnerState<T> out;
  out.parameters = defined_copies(parameters);
  out.buffers = defined_copies(buffers);
  out.optimizer = std::move(optimizer);
  out.steps = steps;
  return out;
}

/// The copies a state's load makes into a learner's `parameters` and `buffers`, every
/// name and shape checked (strictly; an empty state.buffers leaves the buffers alone)
/// before commit() changes anything. `what` names a parameter in messages.
template <class T>
struct StateLoad {
  std::vector<std::pair<Tensor<T>, Tensor<T>>> parameters, buffers;

  StateLoad(const nn::ParamDict<T>& targets, const nn::ParamDict<T>& target_buffers,
            const LearnerState<T>& state, const char* function, const char* what = "parameter")
      : parameters(nn::detail::plan_load(targets, state.parameters, nn::LoadMode::kStrict, function,
                                         what)) {
    if (!state.buffers.empty()) {
      buffers = nn::detail::plan_load(defined_entries(target_buffers), state.buffers,
                                      nn::LoadMode::kStrict, function, "buffer");
    }
  }
  void commit() const {
    copy_planned(parameters);
    copy_planned(buffers);
  }
};

/// Checks that `state` holds what the learner's state holds: an outer optimizer, an
/// inner one and buffers or not, and a non-negative step count. ValueError naming
/// `function` otherwise (a state of another algorithm, most likely).
template <class T>
void check_state(const LearnerState<T>& state, const char* function, bool optimizer, bool inner,
                 bool buffers) {
  const char* other = " (a state of another algorithm or configuration?)";
  METALEARN_CHECK(state.optimizer.has_value() == optimizer, ValueError, function, ": the state ",
                  state.optimizer ? "holds" : "lacks", " an outer-optimizer state, which this ",
                  "learner ", optimizer ? "has" : "does not have", other);
  METALEARN_CHECK(state.inner_optimizer.has_value() == inner, ValueError, function, ": the state ",
                  state.inner_optimizer ? "holds" : "lacks",
                  " a carried inner-optimizer state, which this learner ",
                  inner ? "has" : "does not have", other);
  METALEARN_CHECK(buffers || state.buffers.empty(), ValueError, function, ": the state holds ",
                  state.buffers.size(), " buffer(s), which this learner does not have", other);
  METALEARN_CHECK(state.steps >= 0, ValueError, function, ": negative step count ", state.steps);
}

/// One step of `optimizer` along gradient.sum / gradient.tasks under `finite` (which
/// throws, with nothing changed, when the mean or the updated values are not finite);
/// `function` names the step in messages.
template <class T>
void descend(optim::Optimizer<T>& optimizer, const MetaGradient<T>& gradient,
             const FiniteStepGuard<T>& finite, const std::string& function) {
  const std::vector<Tensor<T>> mean = gradient.mean();
  finite.check_gradients(mean, function);
  optimizer.step(mean);
  finite.check_updated(function);
}

/// The meta-gradient `compute` returns; when it throws, the buffers `finite` saved
/// (running statistics its forward passes moved) are restored first.
template <class T, class Compute>
MetaGradient<T> gradient_or_restore(const FiniteStepGuard<T>& finite, const Compute& compute) {
  try {
    return compute();
  } catch (...) {
    finite.restore_buffers();
    throw;
  }
}

/// `grads` (aligned with `named`) as a dict named like it, an undefined gradient (a
/// parameter the loss does not reach) replaced by zeros of the parameter's shape.
template <class T>
nn::ParamDict<T> gradient_sums(const nn::ParamDict<T>& named, std::vector<Tensor<T>> grads) {
  nn::ParamDict<T> out;
  std::size_t j = 0;
  for (const auto& [name, p] : named) {
    out.insert(name, grads[j].defined() ? std::move(grads[j]) : zeros<T>(p.shape()));
    ++j;
  }
  return out;
}

/// The sum over the tasks of `batch` of the gradient of loss(i).loss (loss returns a
/// TaskLoss) w.r.t.\ `named`, the tasks run on `pool` and folded in task order (so
/// the sums do not depend on the thread count). Statistics: meta_loss (= pre_loss =
/// post_loss) the mean loss; the accuracies the mean of those loss() reports, else -1.
template <class T, class Loss>
MetaGradient<T> sum_task_gradients(ThreadPool& pool, const data::TaskBatch<T>& batch,
                                   const nn::ParamDict<T>& named, const Loss& loss) {
  struct Result {
    std::vector<Tensor<T>> grads;
    double loss = 0.0;
    std::optional<double> accuracy;
  };
  const std::vector<Tensor<T>> params = named.values();
  std::vector<Tensor<T>> grads(params.size());
  MetaGradient<T> out;
  out.tasks = batch.size();
  StepStats& s = out.stats;
  s.tasks = batch.size();
  double acc = 0.0;
  bool measured = false;
  OrderedFold<Result> fold(batch.size(), [&](Result&& r) {
    add_gradients(grads, r.grads);
    s.meta_loss += r.loss;
    if (r.accuracy) {
      acc += *r.accuracy;
      measured = true;
    }
  });
  run_tasks(pool, batch.size(), [&](std::size_t i) {
    autograd::EnableGradGuard grad_on;
    const TaskLoss<T> l = loss(i);
    Result r;
    r.accuracy = l.accuracy;
    r.loss = static_cast<double>(l.loss.item());
    r.grads = autograd::grad({l.loss}, params, autograd::GradOptions{.allow_unused = true});
    fold.put(i, std::move(r));
  });
  const double n = static_cast<double>(batch.size());
  s.meta_loss /= n;
  s.post_loss = s.meta_loss;
  if (measured) s.post_accuracy = acc / n;
  out.sum = gradient_sums(named, std::move(grads));
  return out;
}

}  // namespace detail

}  // namespace metalearn::algorithms
