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
/// step size 1 annealed linearly to 0, meta-batch 5, 50 evaluation steps).
/// Chained setters: `ReptileOptions<float>{}.inner_lr(0.02f).inner_steps(32)`.
template <class T = float>
class ReptileOptions {
 public:
  /// Inner optimizer: Adam (default) or plain SGD.
  ReptileOptions& inner_optimizer(InnerOptimizer v) {
    inner_optimizer_ = v;
    return *this;
  }
  [[nodiscard]] InnerOptimizer inner_optimizer() const { return inner_optimizer_; }
  /// Learning rate of the inner optimizer.
  ReptileOptions& inner_lr(T v) {
    inner_lr_ = v;
    return *this;
  }
  [[nodiscard]] T inner_lr() const { return inner_lr_; }
  /// Adam's moment decay rates in the inner loop (the paper uses beta1 = 0).
  ReptileOptions& adam_betas(double beta1, double beta2) {
    beta1_ = beta1;
    beta2_ = beta2;
    return *this;
  }
  [[nodiscard]] double adam_beta1() const { return beta1_; }
  [[nodiscard]] double adam_beta2() const { return beta2_; }
  /// Carry the inner optimizer's state (Adam's moments and step count) from each task
  /// to the next instead of starting every task afresh, as the paper's code does: it
  /// saves and restores only the model's weights around a task, so its Adam scales
  /// each step by the squared gradients of all the tasks before. The tasks of a
  /// meta-batch then run one after another in batch order, each continuing the state
  /// the one before it left (threads() parallelises evaluation only), and every
  /// adaptation for evaluation starts from the state training reached without
  /// changing it. The state is part of a checkpoint (Reptile::state()). Not
  /// with batch_tasks().
  ReptileOptions& carry_inner_state(bool v) {
    carry_inner_state_ = v;
    return *this;
  }
  [[nodiscard]] bool carry_inner_state() const { return carry_inner_state_; }
  /// Inner steps per task during meta-training.
  ReptileOptions& inner_steps(int v) {
    inner_steps_ = v;
    return *this;
  }
  [[nodiscard]] int inner_steps() const { return inner_steps_; }
  /// Support examples per inner step; 0 takes the whole support set every step.
  /// Mini-batches walk through a random permutation of the support set, which is
  /// reshuffled whenever it is used up.
  ReptileOptions& inner_batch(Index v) {
    inner_batch_ = v;
    return *this;
  }
  [[nodiscard]] Index inner_batch() const { return inner_batch_; }
  /// Inner steps when adapting for evaluation (0: inner_steps).
  ReptileOptions& eval_inner_steps(int v) {
    eval_inner_steps_ = v;
    return *this;
  }
  [[nodiscard]] int eval_inner_steps() const {
    return eval_inner_steps_ > 0 ? eval_inner_steps_ : inner_steps_;
  }
  /// Mini-batch size when adapting for evaluation (-1: inner_batch, 0: whole set).
  ReptileOptions& eval_inner_batch(Index v) {
    eval_inner_batch_ = v;
    return *this;
  }
  [[nodiscard]] Index eval_inner_batch() const {
    return eval_inner_batch_ >= 0 ? eval_inner_batch_ : inner_batch_;
  }
  /// Outer step size epsilon at the first meta-step.
  ReptileOptions& outer_step(T v) {
    outer_step_ = v;
    return *this;
  }
  [[nodiscard]] T outer_step() const { return outer_step_; }
  /// Linear annealing of epsilon: from outer_step at meta-step 0 to `final_value` at
  /// meta-step `over_steps` (and constant after). over_steps = 0: no annealing.
  ReptileOptions& anneal(T final_value, std::int64_t over_steps) {
    outer_step_final_ = final_value;
    anneal_steps_ = over_steps;
    return *this;
  }
  [[nodiscard]] T outer_step_final() const { return outer_step_final_; }
  [[nodiscard]] std::int64_t anneal_steps() const { return anneal_steps_; }
  /// Tasks per meta-batch the training loop should draw (meta_step accepts any
  /// size; 1 is serial Reptile).
  ReptileOptions& meta_batch(Index v) {
    meta_batch_ = v;
    return *this;
  }
  [[nodiscard]] Index meta_batch() const { return meta_batch_; }
  /// Task loss: cross-entropy (default) or MSE.
  ReptileOptions& loss(LossKind v) {
    loss_kind_ = v;
    loss_ = nullptr;
    return *this;
  }
  /// A custom task loss (prediction, target) -> scalar; accuracy is then not reported.
  ReptileOptions& loss(LossFunction<T> f) {
    loss_ = std::move(f);
    return *this;
  }
  [[nodiscard]] LossKind loss_kind() const { return loss_kind_; }
  [[nodiscard]] const LossFunction<T>& custom_loss() const { return loss_; }
  /// Evaluation of the query set after adaptation. Transductive: all queries in one
  /// batch (batch-norm statistics are shared across the query set). Not transductive
  /// (default, the paper's main results): each query example is classified in a
  /// batch made of the support set plus that one example, so no query sees another.
  /// Models without batch statistics give the same result either way.
  ReptileOptions& transductive(bool v) {
    transductive_ = v;
    return *this;
  }
  [[nodiscard]] bool transductive() const { return transductive_; }
  /// Threads running the tasks of a meta-batch (and evaluation episodes) in
  /// parallel; results equal the serial run bit for bit. A task left over after the
  /// last whole round of a meta-batch has its operations split over the threads.
  ReptileOptions& threads(int v) {
    threads_ = v;
    return *this;
  }
  [[nodiscard]] int threads() const { return threads_; }
  /// Train the meta-batch's tasks together (meta-training only): their data are
  /// stacked along a leading task dimension and each inner step is one forward and
  /// backward pass of the model run by nn::TaskBatched over all tasks' weights, which
  /// the inner optimizer updates elementwise as it would each task's alone. Far
  /// faster for small models (the sinusoid MLP). Needs a model whose modules all
  /// have a batched rule (nn::TaskBatched::fused()), a built-in loss and tasks of
  /// equal shapes; mini-batch
  /// orders are those of the per-task run, and the result equals it up to
  /// rounding. threads() is then unused.
  ReptileOptions& batch_tasks(bool v) {
    batch_tasks_ = v;
    return *this;
  }
  [[nodiscard]] bool batch_tasks() const { return batch_tasks_; }
  /// Seed of the mini-batch order and of evaluation episodes.
  /// Check every meta-step for NaN or infinite values (on by default): when the
  /// meta-gradient or the updated parameters are not finite, meta_step() throws
  /// NonFiniteError naming the first such tensor and leaves the parameters and the
  /// optimizer state as they were before the step. Costs one pass over the
  /// gradients and one copy of the parameters and optimizer state per step.
  ReptileOptions& check_finite(bool v) {
    check_finite_ = v;
    return *this;
  }
  [[nodiscard]] bool check_finite() const { return check_finite_; }
  ReptileOptions& seed(std::uint64_t v) {
    seed_ = v;
    return *this;
  }
  [[nodiscard]] std::uint64_t seed() const { return seed_; }

 private:
  InnerOptimizer inner_optimizer_ = InnerOptimizer::kAdam;
  T inner_lr_ = T(1e-3);
  double beta1_ = 0.0;
  double beta2_ = 0.999;
  bool carry_inner_state_ = false;
  int inner_steps_ = 5;
  Index inner_batch_ = 10;
  int eval_inner_steps_ = 50;
  Index eval_inner_batch_ = -1;
  T outer_step_ = T(1);
  T outer_step_final_ = T(0);
  std::int64_t anneal_steps_ = 0;
  Index meta_batch_ = 5;
  LossKind loss_kind_ = LossKind::kCrossEntropy;
  LossFunction<T> loss_;
  bool transductive_ = false;
  int threads_ = 1;
  bool batch_tasks_ = false;
  std::uint64_t seed_ = 0;
  bool check_finite_ = true;
};

/// Reptile over any nn::Module. The module's parameters are theta; meta_step()
/// updates them in place. Each task's inner loop trains a private copy of theta
/// with its own optimizer state, so the tasks of a meta-batch run on a thread pool
/// and are reduced in task order (results equal the serial run bit for bit). The
/// mini-batch order of task j of meta-step t comes from a generator seeded by
/// (seed, t, j), so it depends neither on threads nor on scheduling. With
/// carry_inner_state() the optimizer state passes from task to task instead, and the
/// tasks of a meta-batch run in order on the calling thread. (A model with
/// running-statistics batch norm in training mode updates its running statistics in
/// the inner loops, in completion order when several threads run tasks; the
/// transductive batch norm of the paper has no such state.)
///
/// @code
/// nn::MLP<float> net({1, 64, 64, 1}, gen);
/// algorithms::Reptile<float> reptile(net, algorithms::ReptileOptions<float>{}
///     .inner_optimizer(algorithms::InnerOptimizer::kSgd).inner_lr(0.02f)
///     .inner_steps(32).loss(algorithms::LossKind::kMse).anneal(0.f, 30000));
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
  /// returned (with the carried inner state under carry_inner_state()).
  /// Statistics: with a query set, pre/post are the query loss (and accuracy) at
  /// theta and at phi_i; without one, the losses of the first and the last inner
  /// mini-batch. meta_loss is the mean inner training loss.
  [[nodiscard]] MetaGradient<T> meta_gradient(const data::TaskBatch<T>& batch) const;

  /// The outer update theta <- theta - epsilon_t * sum / tasks (epsilon_t:
  /// current_outer_step()), and the carried inner state becomes the learner's.
  /// @throws ValueError / ShapeError when `gradient` does not fit the parameters,
  /// NonFiniteError (with check_finite()) when it or the updated parameters are not
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
  /// optimizer state (with carry_inner_state()) and steps_taken(), on which the step
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
  [[nodiscard]] Tensor<T> task_loss(const Tensor<T>& pred, const Tensor<T>& target) const;
  [[nodiscard]] bool classifying() const;
  [[nodiscard]] double query_metric(const data::Task<T>& task, const nn::ParamDict<T>& w,
                                    double* loss) const;

  nn::Module<T>& model_;
  ReptileOptions<T> options_;
  LossFunction<T> loss_;
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
