#pragma once
/// @file
/// Model-Agnostic Meta-Learning (Finn, Abbeel & Levine 2017) and its variants as
/// options: first-order MAML, Meta-SGD (learned per-parameter inner learning rates),
/// MAML++ (learned per-layer per-step learning rates and the multi-step loss) and
/// ANIL (only the named parameters, typically the head, adapt in the inner loop).
///
/// MAML learns an initialisation theta such that a few gradient steps on a task's
/// support set give low loss on its query set:
/// @code{.unparsed}
///   min_theta  sum_i  L_query_i( theta - alpha * grad L_support_i(theta) ).
/// @endcode
/// The inner steps are recorded with create_graph, so the meta-gradient includes
/// the Hessian terms (second order) unless first_order is set.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "metalearn/algorithms/common.hpp"
#include "metalearn/algorithms/meta_learner.hpp"
#include "metalearn/core/thread_pool.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/data/task_sampler.hpp"
#include "metalearn/nn/forward_context.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/nn/param_dict.hpp"
#include "metalearn/optim/adam.hpp"
#include "metalearn/optim/functional.hpp"
#include "metalearn/optim/optimizer.hpp"
#include "metalearn/optim/sgd.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::algorithms {

/// The outer-loop optimizer of a meta-learner.
enum class OuterOptimizer { kAdam, kSgd };

/// Options of Maml, with the literature's defaults (sinusoid regression in the
/// MAML paper: inner lr 0.01, one step, Adam 1e-3):
/// `MamlOptions<float>{.inner_lr = 0.4f, .inner_steps = 1, .eval_inner_steps = 3}`.
/// Maml's constructor checks them and throws ValueError naming the field.
template <class T = float>
struct MamlOptions {
  /// Step size alpha of the inner SGD updates (initial value when learned).
  T inner_lr = T(0.01);
  /// Inner steps during meta-training.
  int inner_steps = 1;
  /// Inner steps when adapting for evaluation; unset: inner_steps.
  std::optional<int> eval_inner_steps{};
  /// Drop the second-order terms (FOMAML): inner gradients are constants.
  bool first_order = false;
  /// Outer-loop learning rate.
  T outer_lr = T(1e-3);
  /// Outer-loop optimizer (Adam by default, as in the MAML reference code).
  OuterOptimizer outer_optimizer = OuterOptimizer::kAdam;
  /// Task loss: MSE (default) or cross-entropy.
  LossKind loss = LossKind::kMse;
  /// A custom task loss (prediction, target) -> scalar, used instead of `loss` when
  /// set; accuracy is then not reported.
  LossFunction<T> custom_loss{};
  /// Meta-SGD: a learnable inner learning rate per parameter element, meta-learned
  /// with theta (initialised to inner_lr).
  bool learn_inner_lr = false;
  /// MAML++ LSLR: a learnable scalar learning rate per parameter tensor and per
  /// inner step (initialised to inner_lr).
  bool per_step_lr = false;
  /// MAML++ multi-step loss: the meta-loss is a weighted sum of the query losses
  /// after every inner step; the weights start uniform and anneal linearly to the
  /// last step over `msl_anneal_steps` meta-steps.
  bool multi_step_loss = false;
  int msl_anneal_steps = 100;
  /// ANIL: only parameters whose dotted name starts with one of these prefixes
  /// adapt in the inner loop (e.g.\ {"head."}); empty adapts all.
  std::vector<std::string> adapt_only{};
  /// Threads adapting the tasks of a meta-batch in parallel (results equal serial).
  /// Tasks run side by side, one per thread; a task left over after the last whole
  /// round (a meta-batch of 5 on 2 threads) has its operations split over the threads,
  /// as with threads_within_tasks.
  int threads = 1;
  /// Spend the threads inside each task instead of across tasks (meta-training): the
  /// tasks of a meta-batch run one after another and each one's large operations
  /// (the image chunks of convolutions and their gradients, batch-norm channels,
  /// max-pool planes, large elementwise maps) spread over `threads`. A meta-step then
  /// holds one task's graph at a time instead of `threads` graphs, and tasks with
  /// large batches (tens of images) keep every thread busy even when the meta-batch
  /// is small or not a multiple of `threads`. Results are bit for bit the default's.
  bool threads_within_tasks = false;
  /// Run the meta-batch as one graph (meta-training only): the tasks' data are
  /// stacked along a leading task dimension, theta is broadcast to one copy per
  /// task and nn::TaskBatched runs all tasks' fast weights at once, so
  /// a meta-step records as many nodes as one task instead of one set per task.
  /// Far faster for small models (the sinusoid MLP), where per-op overhead
  /// dominates. Needs a model whose modules all have a batched rule
  /// (nn::TaskBatched::fused(): Linear, MLP, Sequential of those and activations), a
  /// built-in loss and tasks of equal shapes; the
  /// result equals the per-task loop up to rounding. `threads` is then unused.
  bool batch_tasks = false;
  /// Also report the query loss and accuracy before adaptation in StepStats
  /// (pre_loss, pre_accuracy). It costs one more forward pass over every task's
  /// query set per meta-step (about 8% of a MAML-paper Omniglot meta-step), so it is
  /// off unless asked for; pre_loss and pre_accuracy are then empty.
  bool pre_adaptation_stats = false;
  /// Check every meta-step for NaN or infinite values (on by default): when the
  /// meta-gradient or the updated parameters are not finite, meta_step() throws
  /// NonFiniteError naming the first such tensor and leaves the parameters and the
  /// optimizer state as they were before the step. Costs one pass over the
  /// gradients and one copy of the parameters and optimizer state per step.
  bool check_finite = true;
  /// Seed of evaluation episodes.
  std::uint64_t seed = 0;

  /// Inner steps when adapting for evaluation.
  [[nodiscard]] int eval_steps() const { return eval_inner_steps.value_or(inner_steps); }
};

/// MAML over any nn::Module. The module's parameters are theta; Maml updates them
/// in place with its outer optimizer. Batch normalisation follows the mode chosen
/// on the module (the default, transductive batch statistics, is the MAML
/// reference behaviour); per-step statistics read the inner step from the
/// ParamDict (steps 0..K-1 for the inner loop, K for the query pass).
///
/// A Maml object runs the tasks of a meta-batch on its own threads; the object
/// itself is used from one thread at a time (like an optimizer).
template <class T = float>
class Maml {
 public:
  using value_type = T;
  /// What adapt() returns: the fast weights after `steps` inner steps, detached, and
  /// that step count (the forward context of predict(): per-step batch norm uses
  /// the statistics of step `steps`).
  struct Adapted {
    nn::ParamDict<T> weights;
    int steps = 0;
  };

  Maml(nn::Module<T>& model, MamlOptions<T> options = {});

  /// The meta-gradient of a meta-batch, nothing applied: each task adapts on its
  /// support set and its query loss after adaptation is differentiated
  /// w.r.t.\ meta_parameters(); the sums over the tasks, the task count and the step's
  /// statistics are returned.
  [[nodiscard]] MetaGradient<T> meta_gradient(const data::TaskBatch<T>& batch) const;

  /// One outer-optimizer step along the mean gradient sum / tasks.
  /// @throws ValueError / ShapeError when `gradient` does not fit meta_parameters(),
  /// NonFiniteError (with check_finite) when it or the updated meta-parameters are
  /// not finite; nothing changes then.
  void apply(const MetaGradient<T>& gradient);

  /// apply(meta_gradient(batch)); with check_finite the batch-norm running
  /// statistics the step's forward passes moved are rolled back too when it throws.
  StepStats meta_step(const data::TaskBatch<T>& batch);

  /// Fast weights for `task` after `steps` inner steps on its support set (default:
  /// eval_inner_steps). Detached: usable for prediction, not for meta-gradients.
  [[nodiscard]] Adapted adapt(const data::Task<T>& task,
                              std::optional<int> steps = std::nullopt) const;

  /// Predictions of the model for `x` with the fast weights `adapted`.
  [[nodiscard]] Tensor<T> predict(const Adapted& adapted, const Tensor<T>& x) const;

  /// A differentiable copy of the model for an inner loop written by the caller
  /// (learn2learn's `clone()`): it starts at the meta-parameters, adapt(loss) takes
  /// one inner step on any loss with this Maml's rule (inner_lr or the learned rates,
  /// adapt_only, second order unless first_order), and its outputs stay
  /// differentiable w.r.t.\ meta_parameters(). Pass the sum of the query losses of a
  /// meta-batch of learners to meta_gradient_of(), then apply():
  /// @code
  /// Tensor<float> total;
  /// for (const auto& task : batch) {
  ///   auto learner = maml.clone();
  ///   learner.adapt(my_loss(learner(task.support_x), task.support_y));
  ///   auto q = my_loss(learner(task.query_x), task.query_y);
  ///   total = total.defined() ? total + q : q;
  /// }
  /// maml.apply(maml.meta_gradient_of(total, batch.size()));
  /// @endcode
  ///
  /// A Learner refers to its Maml and the model, which must outlive it.
  class Learner {
   public:
    /// The model's output for `x` with the current fast weights (batch-norm step
    /// steps()).
    [[nodiscard]] Tensor<T> operator()(const Tensor<T>& x) const;
    /// One inner step down the gradient of `loss` (a scalar computed from this
    /// learner's outputs).
    /// @throws ShapeError when `loss` is not a scalar, ValueError when it does not
    /// depend on the fast weights or a per-step learning rate is missing for the step.
    void adapt(const Tensor<T>& loss);
    /// The fast weights, named as the model's parameters.
    [[nodiscard]] const nn::ParamDict<T>& parameters() const { return fast_; }
    /// The number of adapt() calls so far.
    [[nodiscard]] int steps() const { return steps_; }

   private:
    friend class Maml;
    Learner(const Maml& maml, nn::ParamDict<T> fast) : maml_(&maml), fast_(std::move(fast)) {}
    const Maml* maml_;
    nn::ParamDict<T> fast_;
    int steps_ = 0;
  };

  /// A Learner at the current meta-parameters.
  [[nodiscard]] Learner clone() const;

  /// The meta-gradient of `loss`, the sum of the query losses of `tasks` learners
  /// made by clone(): its gradient w.r.t.\ meta_parameters() (zero for the ones it does
  /// not reach) as a MetaGradient of `tasks` tasks, so apply() descends along the mean.
  /// @throws ShapeError when `loss` is not a scalar, ValueError when `tasks` is 0.
  [[nodiscard]] MetaGradient<T> meta_gradient_of(const Tensor<T>& loss, std::size_t tasks) const;

  /// Mean and 95% interval of the query metric after adaptation over `episodes`
  /// tasks drawn from `sampler` (accuracy for cross-entropy, loss otherwise).
  [[nodiscard]] EvalResult evaluate(const data::AnyTaskSampler<T>& sampler, std::size_t episodes,
                                    std::optional<int> steps = std::nullopt) const;

  /// The meta-parameters the outer optimizer updates: theta, then any learned
  /// learning rates (named "lr.<param>" or "lr.<param>.step<k>").
  [[nodiscard]] nn::ParamDict<T> meta_parameters() const;

  /// Copies values into the meta-parameters (theta and any learned learning rates),
  /// from a dict named as meta_parameters() names them. All or nothing: every name
  /// and shape is checked first, so a failed load changes nothing. Strict by default:
  /// ValueError naming a missing entry or a name that is neither a meta-parameter nor
  /// a buffer of the model (pass nn::LoadMode::kNonStrict to load only the names
  /// present); ShapeError naming a misshapen entry in both modes.
  void load_meta_parameters(const nn::ParamDict<T>& values,
                            nn::LoadMode mode = nn::LoadMode::kStrict);

  /// The whole training state: meta-parameters, the model's buffers, the outer
  /// optimizer's state and steps_taken() (deep copies).
  [[nodiscard]] LearnerState<T> state() const;

  /// Continues from a state(): all or nothing (every name and shape is checked
  /// before anything changes). An empty `buffers` leaves the model's buffers alone.
  /// @throws ValueError / ShapeError naming the offending entry.
  void load_state(const LearnerState<T>& state);

  [[nodiscard]] const MamlOptions<T>& options() const { return options_; }
  [[nodiscard]] nn::Module<T>& model() const { return model_; }
  [[nodiscard]] std::int64_t steps_taken() const { return steps_taken_; }

 private:
  struct TaskResult {
    std::vector<Tensor<T>> grads;
    double meta_loss = 0, pre_loss = 0, post_loss = 0, pre_acc = -1, post_acc = -1;
  };
  /// What one graph runs on: one task, or a meta-batch stacked by stack_tasks().
  using Episode = StackedTasks<T>;
  static Episode single(const data::Task<T>& task);
  /// Inner loop from `theta` (one copy per task for a stacked episode). With
  /// `record`, the graph is kept for the meta-gradient (second order unless
  /// first_order); `query_losses` receives the query loss after each step when
  /// non-null.
  nn::ParamDict<T> inner_loop(const Episode& episode, const nn::ParamDict<T>& theta, int steps,
                              bool record, std::vector<Tensor<T>>* query_losses) const;
  /// One inner step k from `fast` down the gradient of `loss`: the adapted entries
  /// move by the inner learning rate of step k (or the learned rates); with `create`
  /// the step stays differentiable.
  nn::ParamDict<T> inner_step(const nn::ParamDict<T>& fast, const Tensor<T>& loss, int k,
                              bool create, const char* caller) const;
  /// Adapts and differentiates one episode: for a stacked one, the statistics and
  /// gradients are already the means over its tasks.
  TaskResult run_task(const Episode& episode) const;
  [[nodiscard]] Tensor<T> task_loss(const Tensor<T>& pred, const Targets<T>& target) const;
  [[nodiscard]] bool classifying() const;
  [[nodiscard]] bool adapts(const std::string& name) const;
  [[nodiscard]] std::vector<T> msl_weights() const;

  nn::Module<T>& model_;
  MamlOptions<T> options_;
  SelectedLoss<T> loss_;
  // Learned inner learning rates, keyed by parameter name: one dict for Meta-SGD
  // (tensors of the parameters' shapes) or one per inner step for MAML++ (scalars).
  std::vector<nn::ParamDict<T>> lrs_;
  std::unique_ptr<optim::Optimizer<T>> outer_;
  mutable ThreadPool pool_;
  std::int64_t steps_taken_ = 0;
  /// apply() under a finite check made by the caller; `caller` names it in messages.
  void apply_checked(const MetaGradient<T>& gradient, const detail::FiniteStepGuard<T>& finite,
                     const char* caller);
};

}  // namespace metalearn::algorithms

#include "metalearn/algorithms/maml/maml_impl.hpp"  // IWYU pragma: export
