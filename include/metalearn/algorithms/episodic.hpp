#pragma once
/// @file
/// What the metric meta-learners (Prototypical Networks, Matching Networks) share:
/// their common options and the outer loop that trains an embedding network end to
/// end on the query loss of episodes with Adam and a step decay of its learning rate.
// SPDX-License-Identifier: MIT

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "metalearn/algorithms/common.hpp"
#include "metalearn/algorithms/meta_learner.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/thread_pool.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/data/task_sampler.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/nn/modules/batch_norm.hpp"
#include "metalearn/nn/modules/convnet.hpp"
#include "metalearn/optim/adam.hpp"
#include "metalearn/tensor/ops/distance.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::algorithms {

namespace detail {

/// Number of classes of integral labels 0..ways-1 (the largest label plus one).
inline Index count_ways(const Labels& labels, const char* function) {
  METALEARN_CHECK(!labels.empty(), ValueError, function, ": empty support set");
  return *std::max_element(labels.begin(), labels.end()) + 1;
}

/// Switches a module (none when null) to training mode for a scope and back to
/// evaluation mode.
template <class T>
class TrainingScope {
 public:
  explicit TrainingScope(nn::Module<T>* m) : m_(m) {
    if (m_ != nullptr) m_->train();
  }
  explicit TrainingScope(nn::Module<T>& m) : TrainingScope(&m) {}
  ~TrainingScope() {
    if (m_ != nullptr) m_->eval();
  }
  TrainingScope(const TrainingScope&) = delete;
  TrainingScope& operator=(const TrainingScope&) = delete;

 private:
  nn::Module<T>* m_;
};

/// The outer loop of a metric learner named `name`: an embedding network (used, or
/// owned), optionally an owned context module trained with it (its parameters and
/// buffers named `context.<name>`), Adam over their parameters with a step decay, a
/// thread pool for the episodes and the step count. The learner supplies the episode
/// loss and the evaluation accuracy; error messages name `<name>::<function>`.
template <class T>
class EpisodicTrainer {
 public:
  template <class Options>
  EpisodicTrainer(std::shared_ptr<nn::Module<T>> owned, nn::Module<T>* model,
                  const Options& options, std::string name,
                  std::shared_ptr<nn::Module<T>> context = nullptr)
      : owned_(std::move(owned)),
        model_(model != nullptr ? model : owned_.get()),
        context_(std::move(context)),
        name_(std::move(name)),
        lr_decay_(options.lr_decay),
        lr_decay_every_(options.lr_decay_every),
        check_finite_(options.check_finite),
        pool_(thread_count(options.threads, name_.c_str())) {
    METALEARN_CHECK(options.lr > 0.0, ValueError, name_, ": learning rate must be positive, got ",
                    options.lr);
    METALEARN_CHECK(lr_decay_ > 0.0 && lr_decay_ <= 1.0 && lr_decay_every_ >= 0, ValueError, name_,
                    ": lr_decay factor ", lr_decay_, " must be in (0, 1] and its period ",
                    lr_decay_every_, " non-negative");
    METALEARN_CHECK(options.scale > T(0), ValueError, name_, ": scale must be positive, got ",
                    options.scale);
    outer_ = std::make_unique<optim::Adam<T>>(named_parameters().values(),
                                              optim::AdamOptions{.lr = options.lr});
    model_->eval();
    if (context_ != nullptr) context_->eval();
  }

  /// The sum over the episodes of `batch` of the gradient of loss(task).loss (loss
  /// returns a TaskLoss with the accuracy), in training mode.
  template <class Loss>
  [[nodiscard]] MetaGradient<T> meta_gradient(const data::TaskBatch<T>& batch,
                                              const Loss& loss) const {
    METALEARN_CHECK(!batch.empty(), ValueError, name_, "::meta_gradient: empty task batch");
    const TrainingScope<T> training(*model_);
    const TrainingScope<T> context_training(context_.get());
    // One episode (the papers' setting) has its convolutions split over the pool.
    return sum_task_gradients(pool_, batch, named_parameters(),
                              [&](std::size_t i) { return loss(batch[i]); });
  }

  /// One Adam step along sum / tasks, then the learning-rate decay when due.
  void apply(const MetaGradient<T>& gradient) {
    const std::string function = name_ + "::apply";
    const nn::ParamDict<T> named = named_parameters();
    check_meta_gradient(gradient, named, function);
    const FiniteStepGuard<T> finite(check_finite_, named, outer_.get());
    apply_checked(gradient, finite, function);
  }

  /// apply(meta_gradient(batch, loss)); the running statistics the step's forward
  /// passes moved are rolled back too when it throws.
  template <class Loss>
  StepStats meta_step(const data::TaskBatch<T>& batch, const Loss& loss) {
    const FiniteStepGuard<T> finite(check_finite_, named_parameters(), outer_.get(),
                                    named_buffers());
    const MetaGradient<T> gradient =
        gradient_or_restore(finite, [&] { return meta_gradient(batch, loss); });
    apply_checked(gradient, finite, name_ + "::meta_step");
    return gradient.stats;
  }

  /// Mean and 95% interval of accuracy(task) over `episodes` tasks of `sampler`,
  /// episode i drawn from episode_generator(seed, i) on the pool.
  template <class Accuracy>
  [[nodiscard]] EvalResult evaluate(const data::AnyTaskSampler<T>& sampler, std::size_t episodes,
                                    std::uint64_t seed, const Accuracy& accuracy) const {
    std::vector<double> values(episodes);
    pool_.run(episodes, [&](std::size_t i) {
      Generator gen = episode_generator(seed, i);
      values[i] = accuracy(sampler.sample(gen));
    });
    return EvalResult::from_values(std::move(values));
  }

  [[nodiscard]] LearnerState<T> state() const {
    return make_state(named_parameters(), named_buffers(), std::optional(outer_->state()),
                      steps_taken_);
  }

  void load_state(const LearnerState<T>& state) {
    const std::string function = name_ + "::load_state";
    check_state(state, function.c_str(), /*optimizer=*/true, /*inner=*/false, /*buffers=*/true);
    const StateLoad<T> load(named_parameters(), named_buffers(), state, function.c_str());
    outer_->load_state(*state.optimizer);  // checks everything before it changes anything
    load.commit();
    steps_taken_ = state.steps;
  }

  [[nodiscard]] nn::Module<T>& model() const { return *model_; }
  /// The context module (nullptr without one).
  [[nodiscard]] nn::Module<T>* context() const { return context_.get(); }

  /// The trained parameters: the model's, then the context module's as `context.<name>`.
  [[nodiscard]] nn::ParamDict<T> named_parameters() const {
    return with_context(model_->named_parameters(),
                        context_ != nullptr ? context_->named_parameters() : nn::ParamDict<T>());
  }
  /// The buffers, named as named_parameters().
  [[nodiscard]] nn::ParamDict<T> named_buffers() const {
    return with_context(model_->named_buffers(),
                        context_ != nullptr ? context_->named_buffers() : nn::ParamDict<T>());
  }
  [[nodiscard]] std::int64_t steps_taken() const { return steps_taken_; }
  [[nodiscard]] double current_lr() const { return outer_->lr(); }

 private:
  void apply_checked(const MetaGradient<T>& gradient, const FiniteStepGuard<T>& finite,
                     const std::string& caller) {
    const std::string function = caller + " (meta-step " + std::to_string(steps_taken_) + ")";
    descend(*outer_, gradient, finite, function);
    ++steps_taken_;
    if (lr_decay_every_ > 0 && steps_taken_ % lr_decay_every_ == 0) {
      outer_->set_lr(outer_->lr() * lr_decay_);
    }
  }

  static nn::ParamDict<T> with_context(nn::ParamDict<T> named, const nn::ParamDict<T>& context) {
    for (const auto& [key, tensor] : context) named.insert("context." + std::string(key), tensor);
    return named;
  }

  std::shared_ptr<nn::Module<T>> owned_;
  nn::Module<T>* model_;
  std::shared_ptr<nn::Module<T>> context_;
  std::string name_;
  double lr_decay_;
  std::int64_t lr_decay_every_;
  bool check_finite_;
  std::unique_ptr<optim::Adam<T>> outer_;
  mutable ThreadPool pool_;
  std::int64_t steps_taken_ = 0;
};

}  // namespace detail

}  // namespace metalearn::algorithms
