#pragma once
/// @file
/// Reptile (Nichol, Achiam & Schulman 2018): a first-order meta-learner that moves
/// the initialisation towards the weights each task's ordinary training reaches.
///
/// For a meta-batch of n tasks, each task i starts from theta, takes k steps of an
/// ordinary optimizer (SGD or Adam) on mini-batches of its support set and reaches
/// phi_i; then
/// @code{.unparsed}
///   theta <- theta + epsilon * mean_i (phi_i - theta),
/// @endcode
/// with epsilon annealed linearly over training. n = 1 is the serial algorithm, n > 1
/// the batched one. No second-order terms and no graph across inner steps: memory
/// does not grow with the number of inner steps.
// SPDX-License-Identifier: MIT

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "metalearn/algorithms/common.hpp"
#include "metalearn/algorithms/meta_learner.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/thread_pool.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/data/task_sampler.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/nn/param_dict.hpp"
#include "metalearn/optim/optimizer.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::algorithms {

/// The optimizer of Reptile's inner loop (a task's ordinary training).
enum class InnerOptimizer { kSgd, kAdam };

/// Options of Reptile, with the paper's Omniglot defaults (Nichol et al.\ 2018,
/// table 3: Adam 1e-3 with beta1 = 0, 5 inner steps on mini-batches of 10, outer
/// step size 1 annealed linearly to 0, meta-batch 5, 50 evaluation steps):
/// `ReptileOptions<float>{.inner_lr = 0.02f, .inner_steps = 32}`.
/// Reptile's constructor checks them and throws ValueError naming the field.
template <class T = float>
struct ReptileOptions {
  /// Inner optimizer: Adam (default) or plain SGD.
  InnerOptimizer inner_optimizer = InnerOptimizer::kAdam;
  /// Learning rate of the inner optimizer.
  T inner_lr = T(1e-3);
  /// Adam's moment decay rates in the inner loop (the paper uses beta1 = 0).
  double adam_beta1 = 0.0;
  double adam_beta2 = 0.999;
  /// Carry the inner optimizer's state (Adam's moments and step count) from each task
  /// to the next instead of starting every task afresh, as the paper's code does: it
  /// saves and restores only the model's weights around a task, so its Adam scales
  /// each step by the squared gradients of all the tasks before. The tasks of a
  /// meta-batch then run one after another in batch order, each continuing the state
  /// the one before it left (`threads` parallelises evaluation only), and every
  /// adaptation for evaluation starts from the state training reached without
  /// changing it. The state is part of a checkpoint (Reptile::state()). Not
  /// with batch_tasks.
  bool carry_inner_state = false;
  /// Inner steps per task during meta-training.
  int inner_steps = 5;
  /// Support examples per inner step; 0 takes the whole support set every step.
  /// Mini-batches walk through a random permutation of the support set, which is
  /// reshuffled whenever it is used up.
  Index inner_batch = 10;
  /// Inner steps when adapting for evaluation.
  int eval_inner_steps = 50;
  /// Mini-batch size when adapting for evaluation (0: whole set); unset: inner_batch.
  std::optional<Index> eval_inner_batch{};
  /// Outer step size epsilon at the first meta-step.
  T outer_step = T(1);
  /// Linear annealing of epsilon: from outer_step at meta-step 0 to
  /// `outer_step_final` at meta-step `anneal_steps` (and constant after);
  /// anneal_steps = 0: no annealing.
  T outer_step_final = T(0);
  std::int64_t anneal_steps = 0;
  /// Tasks per meta-batch the training loop should draw (meta_step accepts any
  /// size; 1 is serial Reptile).
  Index meta_batch = 5;
  /// Task loss: cross-entropy (default) or MSE.
  LossKind loss = LossKind::kCrossEntropy;
  /// A custom task loss (prediction, target) -> scalar, used instead of `loss` when
  /// set; accuracy is then not reported.
  LossFunction<T> custom_loss{};
  /// Evaluation of the query set after adaptation. Transductive: all queries in one
  /// batch (batch-norm statistics are shared across the query set). Not transductive
  /// (default, the paper's main results): each query example is classified in a
  /// batch made of the support set plus that one example, so no query sees another.
  /// Models without batch statistics give the same result either way.
  bool transductive = false;
  /// Threads running the tasks of a meta-batch (and evaluation episodes) in
  /// parallel; results equal the serial run bit for bit. A task left over after the
  /// last whole round of a meta-batch has its operations split over the threads.
  int threads = 1;
  /// Train the meta-batch's tasks together (meta-training only): their data are
  /// stacked along a leading task dimension and each inner step is one forward and
  /// backward pass of the model run by nn::TaskBatched over all tasks' weights, which
  /// the inner optimizer updates elementwise as it would each task's alone. Far
  /// faster for small models (the sinusoid MLP). Needs a model whose modules all
  /// have a batched rule (nn::TaskBatched::fused()), a built-in loss and tasks of
  /// equal shapes; mini-batch orders are those of the per-task run, and the result
  /// equals it up to rounding. `threads` is then unused.
  bool batch_tasks = false;
  /// Check every meta-step for NaN or infinite values (on by default): when the
  /// meta-gradient or the updated parameters are not finite, meta_step() throws
  /// NonFiniteError naming the first such tensor and leaves the parameters and the
  /// optimizer state as they were before the step. Costs one pass over the
  /// gradients and one copy of the parameters and optimizer state per step.
  bool check_finite = true;
  /// Seed of the mini-batch order and of evaluation episodes.
  std::uint64_t seed = 0;

  /// Mini-batch size when adapting for evaluation (0: whole set).
  [[nodiscard]] Index eval_batch() const { return eval_inner_batch.value_or(inner_batch); }
};

/// Reptile over any nn::Module. The module's parameters are theta; meta_step()
/// updates them in place. Each task's inner loop trains a private copy of theta
/// with its own optimizer state, so the tasks of a meta-batch run on a thread pool
/// and are reduced in task order (results equal the serial run bit for bit). The
/// mini-batch order of task j of meta-step t comes from a generator seeded by
/// (seed, t, j), so it depends neither on threads nor on scheduling. With
/// carry_inner_state the optimizer state passes from task to task instead, and the
/// tasks of a meta-batch run in order on the calling thread. (A model with
/// running-statistics batch norm in training mode updates its running statistics in
/// the inner loops, in completion order when several threads run tasks; the
/// transductive batch norm of the paper has no such state.)
///
/// @code
/// nn::MLP<float> net({1, 64, 64, 1}, gen);
/// algorithms::Reptile<float> reptile(
///     net, {.inner_optimizer = algorithms::InnerOptimizer::kSgd, .inner_lr = 0.02f,
///           .inner_steps = 32, .outer_step_final = 0.f, .anneal_steps = 30000,
///           .loss = algorithms::LossKind::kMse});
/// for (int s = 0; s < 30000; ++s) reptile.meta_step(batches.next());
/// auto fast = reptile.adapt(task);                       // ParamDict of fast weights
/// auto y = reptile.predict(fast, task.query_x);
/// @endcode
///
/// Cost per task: inner_steps forward/backward passes on inner_batch examples;
/// memory of one graph of one step plus two parameter copies (three with Adam).
template <class T = float>
class Reptile {
 public:
  /// @throws ValueError on negative steps or batch sizes or a negative step size.
  Reptile(nn::Module<T>& model, ReptileOptions<T> options = {});

  using value_type = T;
  /// What adapt() returns: the fast weights after the inner steps, detached.
  using Adapted = nn::ParamDict<T>;

  /// The Reptile direction of a meta-batch, nothing applied: each task trains a copy
  /// phi_i of theta on its support set; the sum over tasks of theta - phi_i is
  /// returned (with the carried inner state under carry_inner_state).
  /// Statistics: with a query set, pre/post are the query loss (and accuracy) at
  /// theta and at phi_i; without one, the losses of the first and the last inner
  /// mini-batch. meta_loss is the mean inner training loss.
  [[nodiscard]] MetaGradient<T> meta_gradient(const data::TaskBatch<T>& batch) const;

  /// The outer update theta <- theta - epsilon_t * sum / tasks (epsilon_t:
  /// current_outer_step()), and the carried inner state becomes the learner's.
  /// @throws ValueError / ShapeError when `gradient` does not fit the parameters,
  /// NonFiniteError (with check_finite) when it or the updated parameters are not
  /// finite; nothing changes then.
  void apply(const MetaGradient<T>& gradient);

  /// apply(meta_gradient(batch)): theta <- theta + epsilon_t * mean_i (phi_i - theta)
  /// (a single task is serial Reptile).
  StepStats meta_step(const data::TaskBatch<T>& batch);

  /// Fast weights for `task` after `steps` inner steps (default: eval_inner_steps) on
  /// mini-batches of `batch` examples (default: eval_inner_batch) of its support set,
  /// with mini-batch order drawn from (seed, stream).
  [[nodiscard]] Adapted adapt(const data::Task<T>& task, std::optional<int> steps = std::nullopt,
                              std::optional<Index> batch = std::nullopt,
                              std::uint64_t stream = 0) const;

  /// The model's output for `x` with the fast weights `adapted` (one batch).
  [[nodiscard]] Tensor<T> predict(const Adapted& adapted, const Tensor<T>& x) const;

  /// The model's output for the query set of `task`, transductive or not as set in
  /// the options (see ReptileOptions::transductive).
  [[nodiscard]] Tensor<T> predict_query(const data::Task<T>& task, const Adapted& adapted) const;

  /// Mean and 95% interval of the query metric after adaptation over `episodes`
  /// tasks drawn from `sampler` (accuracy for cross-entropy, loss otherwise).
  [[nodiscard]] EvalResult evaluate(const data::AnyTaskSampler<T>& sampler, std::size_t episodes,
                                    std::optional<int> steps = std::nullopt) const;

  /// The outer step size used by the next meta-step.
  [[nodiscard]] T current_outer_step() const;

  /// The parameters the outer update moves: the model's (theta).
  [[nodiscard]] nn::ParamDict<T> meta_parameters() const { return model_.named_parameters(); }

  /// The whole training state: theta, the model's buffers, the carried inner
  /// optimizer state (with carry_inner_state) and steps_taken(), on which the step
  /// size schedule and the mini-batch order of the following meta-steps depend.
  [[nodiscard]] LearnerState<T> state() const;

  /// Continues from a state(): all or nothing (every name and shape is checked
  /// before anything changes). An empty `buffers` leaves the model's buffers alone.
  /// @throws ValueError / ShapeError naming the offending entry.
  void load_state(const LearnerState<T>& state);

  [[nodiscard]] const ReptileOptions<T>& options() const { return options_; }
  [[nodiscard]] nn::Module<T>& model() const { return model_; }
  [[nodiscard]] std::int64_t steps_taken() const { return steps_taken_; }

 private:
  struct TaskResult {
    nn::ParamDict<T> phi;
    double meta_loss = 0, pre_loss = 0, post_loss = 0, pre_acc = -1, post_acc = -1;
  };
  /// Trains a copy of `theta` on `task`'s support set; returns the final weights
  /// (detached leaves) and, when `losses` is non-null, each step's training loss.
  /// With a non-null `state`, the inner optimizer starts from it and leaves its final
  /// state there.
  nn::ParamDict<T> inner_loop(const data::Task<T>& task, const nn::ParamDict<T>& theta, int steps,
                              Index batch, Generator& gen, std::vector<double>* losses,
                              optim::OptimizerState<T>* state) const;
  TaskResult run_task(const data::Task<T>& task, std::size_t index,
                      optim::OptimizerState<T>* state) const;
  /// The generator of the mini-batch order of task `index` of the next meta-step.
  [[nodiscard]] Generator train_generator(std::size_t index) const;
  /// batch_tasks: all tasks' inner loops at once; returns phi with a leading task
  /// dimension and fills the statistics.
  nn::ParamDict<T> run_stacked(const data::TaskBatch<T>& batch, StepStats& stats) const;
  [[nodiscard]] Tensor<T> task_loss(const Tensor<T>& pred, const Targets<T>& target) const;
  [[nodiscard]] bool classifying() const;
  [[nodiscard]] double query_metric(const data::Task<T>& task, const nn::ParamDict<T>& w,
                                    double* loss) const;

  nn::Module<T>& model_;
  ReptileOptions<T> options_;
  SelectedLoss<T> loss_;
  mutable ThreadPool pool_;
  std::int64_t steps_taken_ = 0;
  optim::OptimizerState<T> inner_state_;
  /// apply() under a finite check made by the caller; `caller` names it in messages.
  /// A deep copy of an inner-optimizer state of this learner's inner optimizer over its
  /// parameters; ValueError / ShapeError naming the entry otherwise.
  [[nodiscard]] optim::OptimizerState<T> validated_inner_state(
      const optim::OptimizerState<T>& state) const;
  void apply_checked(const MetaGradient<T>& gradient, const detail::FiniteStepGuard<T>& finite,
                     const char* caller);
};

}  // namespace metalearn::algorithms

#include "metalearn/algorithms/reptile/reptile_impl.hpp"  // IWYU pragma: export
