#pragma once
// Definitions of Maml (included at the end of maml.hpp).

#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "metalearn/algorithms/maml/maml.hpp"
#include "metalearn/autograd/grad.hpp"
#include "metalearn/tensor/ops.hpp"

namespace metalearn::algorithms {

template <class T>
Maml<T>::Maml(nn::Module<T>& model, MamlOptions<T> options)
    : model_(model),
      options_(std::move(options)),
      loss_(options_.custom_loss, options_.loss, "Maml"),
      pool_(thread_count(options_.threads, "Maml")) {
  METALEARN_CHECK(options_.inner_steps >= 0 && options_.eval_steps() >= 0, ValueError,
                  "Maml: inner_steps (", options_.inner_steps, ") and eval_inner_steps (",
                  options_.eval_steps(), ") must be >= 0");
  METALEARN_CHECK(std::isfinite(options_.inner_lr) && options_.inner_lr >= T(0), ValueError,
                  "Maml: inner_lr must be finite and >= 0, got ", options_.inner_lr);
  METALEARN_CHECK(std::isfinite(options_.outer_lr) && options_.outer_lr >= T(0), ValueError,
                  "Maml: outer_lr must be finite and >= 0, got ", options_.outer_lr);
  METALEARN_CHECK(!options_.multi_step_loss || options_.msl_anneal_steps >= 0, ValueError,
                  "Maml: multi_step_loss anneals over a negative number of steps ",
                  options_.msl_anneal_steps);
  METALEARN_CHECK(!(options_.learn_inner_lr && options_.per_step_lr), ValueError,
                  "Maml: learn_inner_lr (Meta-SGD) and per_step_lr (MAML++) are exclusive");
  if (options_.batch_tasks) check_task_batching("Maml", model_, options_.custom_loss);
  const nn::ParamDict<T> theta = model_.named_parameters();
  if (options_.learn_inner_lr || options_.per_step_lr) {
    const int sets =
        options_.learn_inner_lr ? 1 : std::max(options_.inner_steps, options_.eval_steps());
    lrs_.resize(static_cast<std::size_t>(sets));
    for (auto& dict : lrs_) {
      for (const auto& [name, p] : theta) {
        const Shape shape = options_.learn_inner_lr ? p.shape() : Shape{};
        dict.insert(name, full<T>(shape, options_.inner_lr).requires_grad(true));
      }
    }
  }
  std::vector<Tensor<T>> params = meta_parameters().values();
  if (options_.outer_optimizer == OuterOptimizer::kAdam) {
    outer_ = std::make_unique<optim::Adam<T>>(
        params, optim::AdamOptions{.lr = static_cast<double>(options_.outer_lr)});
  } else {
    outer_ = std::make_unique<optim::SGD<T>>(
        params, optim::SGDOptions{.lr = static_cast<double>(options_.outer_lr)});
  }
}

template <class T>
bool Maml<T>::adapts(const std::string& name) const {
  if (options_.adapt_only.empty()) return true;
  for (const auto& prefix : options_.adapt_only) {
    if (name.compare(0, prefix.size(), prefix) == 0) return true;
  }
  return false;
}

template <class T>
bool Maml<T>::classifying() const {
  return loss_.classifying();
}

template <class T>
Tensor<T> Maml<T>::task_loss(const Tensor<T>& pred, const Targets<T>& target) const {
  return loss_(pred, target);
}

template <class T>
nn::ParamDict<T> Maml<T>::meta_parameters() const {
  nn::ParamDict<T> all = model_.named_parameters();
  for (std::size_t k = 0; k < lrs_.size(); ++k) {
    const std::string suffix = options_.per_step_lr ? ".step" + std::to_string(k) : "";
    for (const auto& [name, t] : lrs_[k]) all.insert("lr." + std::string(name) + suffix, t);
  }
  return all;
}

template <class T>
void Maml<T>::load_meta_parameters(const nn::ParamDict<T>& values, nn::LoadMode mode) {
  const auto plan =
      nn::detail::plan_load(meta_parameters(), values, mode, "Maml::load_meta_parameters",
                            "meta-parameter", model_.named_buffers());
  detail::copy_planned(plan);
}

template <class T>
LearnerState<T> Maml<T>::state() const {
  return detail::make_state(meta_parameters(), model_.named_buffers(),
                            std::optional(outer_->state()), steps_taken_);
}

template <class T>
void Maml<T>::load_state(const LearnerState<T>& state) {
  const char* function = "Maml::load_state";
  detail::check_state(state, function, /*optimizer=*/true, /*inner=*/false, /*buffers=*/true);
  const detail::StateLoad<T> load(meta_parameters(), model_.named_buffers(), state, function,
                                  "meta-parameter");
  outer_->load_state(*state.optimizer);  // checks everything before it changes anything
  load.commit();
  steps_taken_ = state.steps;
}

template <class T>
typename Maml<T>::Episode Maml<T>::single(const data::Task<T>& task) {
  return Episode::single(task);
}

template <class T>
nn::ParamDict<T> Maml<T>::inner_loop(const Episode& episode, const nn::ParamDict<T>& theta,
                                     int steps, bool record,
                                     std::vector<Tensor<T>>* query_losses) const {
  const bool create = record && !options_.first_order;
  const Index tasks = episode.tasks;
  nn::ParamDict<T> fast = theta;
  for (int k = 0; k < steps; ++k) {
    Tensor<T> loss;
    {
      const nn::ForwardScope step_k({.step = k});
      loss = task_loss(model_outputs(model_, episode.support_x, fast, tasks), episode.support_y);
    }
    // Stacked tasks: the sum of their losses, whose gradient w.r.t. each task's copy
    // of the weights is that task's own gradient.
    if (tasks > 0) loss = mul_scalar(loss, static_cast<T>(tasks));
    fast = inner_step(fast, loss, k, create, "Maml");
    if (!record) {
      // Evaluation: cut each step from the graph, so memory does not grow with steps.
      std::vector<Tensor<T>> cut;
      for (const auto& t : fast.values()) cut.push_back(t.detach().requires_grad(true));
      fast = fast.with_values(std::move(cut));
    }
    if (query_losses != nullptr && k + 1 < steps) {
      const nn::ForwardScope step_k1({.step = k + 1});
      query_losses->push_back(
          task_loss(model_outputs(model_, episode.query_x, fast, tasks), episode.query_y));
    }
  }
  return fast;
}

template <class T>
nn::ParamDict<T> Maml<T>::inner_step(const nn::ParamDict<T>& fast, const Tensor<T>& loss, int k,
                                     bool create, const char* caller) const {
  // Gradients w.r.t. the adapted parameters only (ANIL leaves the body alone).
  const std::vector<Tensor<T>> values = fast.values();
  std::vector<bool> adapted;
  std::vector<Tensor<T>> xs;
  for (const auto& [name, t] : fast) {
    adapted.push_back(adapts(std::string(name)));
    if (adapted.back()) xs.push_back(t);
  }
  auto partial = autograd::grad(
      {loss}, xs,
      autograd::GradOptions{.retain_graph = create, .create_graph = create, .allow_unused = true});
  std::vector<Tensor<T>> grads(values.size());
  for (std::size_t i = 0, j = 0; i < values.size(); ++i) {
    if (adapted[i]) grads[i] = std::move(partial[j++]);
  }
  if (lrs_.empty()) return optim::sgd_update(fast, grads, options_.inner_lr);
  const std::size_t set = options_.per_step_lr ? static_cast<std::size_t>(k) : 0;
  METALEARN_CHECK(set < lrs_.size(), ValueError, caller, ": inner step ", k,
                  " has no learned learning rate (per_step_lr learns ", lrs_.size(),
                  "; raise inner_steps or eval_inner_steps)");
  return optim::sgd_update(fast, grads, lrs_[set]);
}

template <class T>
Tensor<T> Maml<T>::Learner::operator()(const Tensor<T>& x) const {
  const nn::ForwardScope step({.step = steps_});
  return maml_->model_.forward(x, fast_);
}

template <class T>
void Maml<T>::Learner::adapt(const Tensor<T>& loss) {
  METALEARN_CHECK(loss.defined(), ValueError,
                  "Maml::Learner::adapt: the loss is an undefined tensor");
  METALEARN_CHECK(loss.numel() == 1, ShapeError,
                  "Maml::Learner::adapt: the loss must be a scalar, got shape ", loss.shape());
  METALEARN_CHECK(loss.requires_grad(), ValueError,
                  "Maml::Learner::adapt: the loss does not depend on the fast weights (compute "
                  "it from this learner's outputs, with gradients enabled)");
  fast_ =
      maml_->inner_step(fast_, loss, steps_, !maml_->options_.first_order, "Maml::Learner::adapt");
  ++steps_;
}

template <class T>
typename Maml<T>::Learner Maml<T>::clone() const {
  return Learner(*this, model_.named_parameters());
}

template <class T>
MetaGradient<T> Maml<T>::meta_gradient_of(const Tensor<T>& loss, std::size_t tasks) const {
  METALEARN_CHECK(tasks > 0, ValueError, "Maml::meta_gradient_of: tasks must be > 0");
  METALEARN_CHECK(loss.defined(), ValueError,
                  "Maml::meta_gradient_of: the loss is an undefined tensor");
  METALEARN_CHECK(loss.numel() == 1, ShapeError,
                  "Maml::meta_gradient_of: the loss must be a scalar, got shape ", loss.shape());
  const nn::ParamDict<T> meta = meta_parameters();
  std::vector<Tensor<T>> grads =
      loss.requires_grad()
          ? autograd::grad({loss}, meta.values(), autograd::GradOptions{.allow_unused = true})
          : std::vector<Tensor<T>>(meta.size());
  MetaGradient<T> out;
  out.tasks = tasks;
  out.stats.tasks = tasks;
  out.stats.meta_loss = static_cast<double>(loss.item()) / static_cast<double>(tasks);
  out.sum = detail::gradient_sums(meta, std::move(grads));
  return out;
}

template <class T>
std::vector<T> Maml<T>::msl_weights() const {
  const int n = options_.inner_steps;
  std::vector<T> w(static_cast<std::size_t>(n), T(1) / static_cast<T>(n));
  if (n <= 1) return std::vector<T>(static_cast<std::size_t>(std::max(n, 1)), T(1));
  // Anneal from uniform to all weight on the last step (MAML++): the earlier
  // weights decay linearly to a small floor, the last takes the rest.
  const T progress = std::min<T>(
      T(1), static_cast<T>(steps_taken_) / static_cast<T>(std::max(1, options_.msl_anneal_steps)));
  const T floor = T(0.03) / static_cast<T>(n);
  T rest = T(0);
  for (int i = 0; i + 1 < n; ++i) {
    w[static_cast<std::size_t>(i)] = std::max(floor, (T(1) - progress) / static_cast<T>(n));
    rest += w[static_cast<std::size_t>(i)];
  }
  w[static_cast<std::size_t>(n - 1)] = T(1) - rest;
  return w;
}

template <class T>
typename Maml<T>::TaskResult Maml<T>::run_task(const Episode& episode) const {
  TaskResult r;
  nn::ParamDict<T> theta = model_.named_parameters();
  const Index tasks = episode.tasks;
  // One copy of theta per stacked task; the meta-gradient flows back through them.
  if (tasks > 0) theta = per_task_copies(theta, tasks);
  const nn::ParamDict<T> meta = meta_parameters();
  const bool msl = options_.multi_step_loss && options_.inner_steps > 1;
  if (options_.pre_adaptation_stats) {
    autograd::NoGradGuard no_grad;
    const nn::ForwardScope step_0({.step = 0});
    Tensor<T> pre = model_outputs(model_, episode.query_x, theta, tasks);
    r.pre_loss = static_cast<double>(task_loss(pre, episode.query_y).item());
    if (classifying()) r.pre_acc = accuracy(pre, episode.query_y.labels);
  } else {
    r.pre_loss = std::numeric_limits<double>::quiet_NaN();
  }
  std::vector<Tensor<T>> step_losses;
  nn::ParamDict<T> fast =
      inner_loop(episode, theta, options_.inner_steps, true, msl ? &step_losses : nullptr);
  Tensor<T> query_pred;
  {
    const nn::ForwardScope step_last({.step = options_.inner_steps});
    query_pred = model_outputs(model_, episode.query_x, fast, tasks);
  }
  Tensor<T> query_loss = task_loss(query_pred, episode.query_y);
  r.post_loss = static_cast<double>(query_loss.item());
  if (classifying()) r.post_acc = accuracy(query_pred, episode.query_y.labels);
  Tensor<T> objective = query_loss;
  if (msl) {
    step_losses.push_back(query_loss);
    const auto w = msl_weights();
    objective = mul_scalar(step_losses[0], w[0]);
    for (std::size_t i = 1; i < step_losses.size(); ++i) {
      objective = add(objective, mul_scalar(step_losses[i], w[i]));
    }
  }
  r.meta_loss = static_cast<double>(objective.item());
  // Stacked tasks: the sum of their objectives, whose gradient is the sum of theirs.
  if (tasks > 0) objective = mul_scalar(objective, static_cast<T>(tasks));
  r.grads = autograd::grad({objective}, meta.values(), autograd::GradOptions{.allow_unused = true});
  return r;
}

template <class T>
MetaGradient<T> Maml<T>::meta_gradient(const data::TaskBatch<T>& batch) const {
  METALEARN_CHECK(!batch.empty(), ValueError, "Maml::meta_gradient: empty task batch");
  const nn::ParamDict<T> meta = meta_parameters();
  MetaGradient<T> out;
  out.tasks = batch.size();
  StepStats& s = out.stats;
  s.tasks = batch.size();
  std::vector<Tensor<T>> grads;
  if (options_.batch_tasks) {
    // One graph for the whole batch: its statistics are already means.
    TaskResult r = run_task(stack_tasks(batch, "Maml (batch_tasks)"));
    grads = std::move(r.grads);
    s.meta_loss = r.meta_loss;
    s.post_loss = r.post_loss;
    if (options_.pre_adaptation_stats) s.pre_loss = r.pre_loss;
    if (classifying()) {
      s.post_accuracy = r.post_acc;
      if (options_.pre_adaptation_stats) s.pre_accuracy = r.pre_acc;
    }
  } else {
    // Results are folded in task order as they finish, so the sum does not depend on
    // the thread count and only the results waiting on an earlier task are held.
    grads.resize(meta.size());
    double pre_loss = 0.0;
    double pre_acc = 0.0;
    double post_acc = 0.0;
    OrderedFold<TaskResult> fold(batch.size(), [&](TaskResult&& r) {
      add_gradients(grads, r.grads);
      s.meta_loss += r.meta_loss;
      pre_loss += r.pre_loss;
      s.post_loss += r.post_loss;
      pre_acc += r.pre_acc;
      post_acc += r.post_acc;
    });
    if (options_.threads_within_tasks) {
      // One task at a time, its operations split over the pool: one graph alive.
      const IntraOpScope intra_op(&pool_);
      for (std::size_t i = 0; i < batch.size(); ++i) fold.put(i, run_task(single(batch[i])));
    } else {
      run_tasks(pool_, batch.size(),
                [&](std::size_t i) { fold.put(i, run_task(single(batch[i]))); });
    }
    const double n = static_cast<double>(batch.size());
    s.meta_loss /= n;
    s.post_loss /= n;
    if (options_.pre_adaptation_stats) s.pre_loss = pre_loss / n;
    if (classifying()) {
      s.post_accuracy = post_acc / n;
      if (options_.pre_adaptation_stats) s.pre_accuracy = pre_acc / n;
    }
  }
  out.sum = detail::gradient_sums(meta, std::move(grads));
  return out;
}

template <class T>
void Maml<T>::apply_checked(const MetaGradient<T>& gradient,
                            const detail::FiniteStepGuard<T>& finite, const char* caller) {
  const std::string function =
      std::string(caller) + " (meta-step " + std::to_string(steps_taken_) + ")";
  detail::descend(*outer_, gradient, finite, function);
  ++steps_taken_;
}

template <class T>
void Maml<T>::apply(const MetaGradient<T>& gradient) {
  const nn::ParamDict<T> meta = meta_parameters();
  detail::check_meta_gradient(gradient, meta, "Maml::apply");
  const detail::FiniteStepGuard<T> finite(options_.check_finite, meta, outer_.get());
  apply_checked(gradient, finite, "Maml::apply");
}

template <class T>
StepStats Maml<T>::meta_step(const data::TaskBatch<T>& batch) {
  const nn::ParamDict<T> meta = meta_parameters();
  const detail::FiniteStepGuard<T> finite(options_.check_finite, meta, outer_.get(),
                                          model_.named_buffers());
  const MetaGradient<T> gradient =
      detail::gradient_or_restore(finite, [&] { return meta_gradient(batch); });
  apply_checked(gradient, finite, "Maml::meta_step");
  return gradient.stats;
}

template <class T>
typename Maml<T>::Adapted Maml<T>::adapt(const data::Task<T>& task,
                                         std::optional<int> steps) const {
  const int k = steps.value_or(options_.eval_steps());
  METALEARN_CHECK(k >= 0, ValueError, "Maml::adapt: ", k, " inner steps (must be >= 0)");
  nn::ParamDict<T> fast = inner_loop(single(task), model_.named_parameters(), k, false, nullptr);
  nn::ParamDict<T> out;
  for (const auto& [name, t] : fast) out.insert(name, t.detach());
  return {std::move(out), k};
}

template <class T>
Tensor<T> Maml<T>::predict(const Adapted& adapted, const Tensor<T>& x) const {
  autograd::NoGradGuard no_grad;
  const nn::ForwardScope step({.step = adapted.steps});
  return model_.forward(x, adapted.weights);
}

template <class T>
EvalResult Maml<T>::evaluate(const data::AnyTaskSampler<T>& sampler, std::size_t episodes,
                             std::optional<int> steps) const {
  std::vector<double> values(episodes);
  pool_.run(episodes, [&](std::size_t i) {
    Generator gen = episode_generator(options_.seed, i);
    data::Task<T> task = sampler.sample(gen);
    const Adapted fast = adapt(task, steps);
    const Tensor<T> pred = predict(fast, task.query_x);
    const Targets<T> target = Targets<T>::query(task);
    values[i] = classifying() ? accuracy(pred, target.labels)
                              : static_cast<double>(task_loss(pred, target).item());
  });
  return EvalResult::from_values(std::move(values));
}

static_assert(MetaLearner<Maml<float>> && MetaLearner<Maml<double>>);

}  // namespace metalearn::algorithms
