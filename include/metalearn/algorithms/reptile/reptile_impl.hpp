#pragma once
// Definitions of Reptile (included at the end of reptile.hpp).
// SPDX-License-Identifier: MIT

#include <algorithm>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "metalearn/algorithms/reptile/reptile.hpp"
#include "metalearn/autograd/grad.hpp"
#include "metalearn/nn/modules/batch_norm.hpp"
#include "metalearn/optim/adam.hpp"
#include "metalearn/optim/optimizer.hpp"
#include "metalearn/optim/sgd.hpp"
#include "metalearn/tensor/ops.hpp"

namespace metalearn::algorithms {

namespace detail {

/// Stream tags of Reptile's generators (training tasks, evaluation adaptation).
inline constexpr std::uint64_t kReptileTrainTag = 0x72'65'70'74'69'6CULL;
inline constexpr std::uint64_t kReptileAdaptTag = 0x61'64'61'70'74ULL;

/// Successive random permutations of 0..n-1 cut into mini-batches of `batch`
/// indices; a batch may span the end of one permutation and the start of the next.
class MiniBatchStream {
 public:
  MiniBatchStream(Index n, Index batch, Generator& gen)
      : gen_(gen), order_(static_cast<size_t>(n)) {
    std::iota(order_.begin(), order_.end(), Index{0});
    batch_ = batch;
    pos_ = n;  // shuffle before the first batch
  }
  std::vector<Index> next() {
    std::vector<Index> out;
    out.reserve(static_cast<std::size_t>(batch_));
    const Index n = static_cast<Index>(order_.size());
    while (static_cast<Index>(out.size()) < batch_) {
      if (pos_ == n) {
        for (Index i = n - 1; i > 0; --i) {
          std::swap(order_[static_cast<std::size_t>(i)],
                    order_[static_cast<std::size_t>(gen_.randint(0, i))]);
        }
        pos_ = 0;
      }
      out.push_back(order_[static_cast<std::size_t>(pos_++)]);
    }
    return out;
  }

 private:
  Generator& gen_;
  std::vector<Index> order_;
  Index batch_ = 1;
  Index pos_ = 0;
};

/// True when some module of the tree normalises with batch statistics, so that the
/// composition of a batch changes the outputs of its examples.
template <class T>
bool has_batch_norm(const nn::Module<T>& m) {
  if (dynamic_cast<const nn::BatchNorm1d<T>*>(&m) != nullptr ||
      dynamic_cast<const nn::BatchNorm2d<T>*>(&m) != nullptr) {
    return true;
  }
  for (const auto& [name, child] : m.named_children()) {
    if (has_batch_norm(*child)) return true;
  }
  return false;
}

/// The inner optimizer the options select, over `phi`.
template <class T>
std::unique_ptr<optim::Optimizer<T>> make_inner_optimizer(const ReptileOptions<T>& options,
                                                          const std::vector<Tensor<T>>& phi) {
  const double lr = static_cast<double>(options.inner_lr);
  if (options.inner_optimizer == InnerOptimizer::kAdam) {
    return std::make_unique<optim::Adam<T>>(
        phi,
        optim::AdamOptions{.lr = lr, .beta1 = options.adam_beta1, .beta2 = options.adam_beta2});
  }
  return std::make_unique<optim::SGD<T>>(phi, optim::SGDOptions{.lr = lr});
}

/// One step of `opt` along the gradient of `loss` w.r.t. `phi` (its parameters; a
/// parameter the loss does not use is left alone).
template <class T>
void descend(optim::Optimizer<T>& opt, const std::vector<Tensor<T>>& phi, const Tensor<T>& loss) {
  opt.step(autograd::grad({loss}, phi, autograd::GradOptions{.allow_unused = true}));
}

}  // namespace detail

template <class T>
Reptile<T>::Reptile(nn::Module<T>& model, ReptileOptions<T> options)
    : model_(model),
      options_(std::move(options)),
      loss_(options_.custom_loss, options_.loss, "Reptile"),
      pool_(thread_count(options_.threads, "Reptile")) {
  METALEARN_CHECK(options_.inner_steps >= 0 && options_.eval_inner_steps >= 0, ValueError,
                  "Reptile: inner_steps (", options_.inner_steps, ") and eval_inner_steps (",
                  options_.eval_inner_steps, ") must be >= 0");
  METALEARN_CHECK(options_.inner_batch >= 0 && options_.eval_batch() >= 0, ValueError,
                  "Reptile: inner_batch (", options_.inner_batch, ") and eval_inner_batch (",
                  options_.eval_batch(), ") must be >= 0 (0: the whole support set)");
  METALEARN_CHECK(
      options_.inner_lr >= T(0) && options_.outer_step >= T(0) &&
          options_.outer_step_final >= T(0) && std::isfinite(options_.inner_lr) &&
          std::isfinite(options_.outer_step) && std::isfinite(options_.outer_step_final),
      ValueError, "Reptile: inner_lr ", options_.inner_lr, ", outer_step ", options_.outer_step,
      " and the annealed step ", options_.outer_step_final, " must be finite and non-negative");
  METALEARN_CHECK(options_.anneal_steps >= 0, ValueError,
                  "Reptile: anneal over a negative number of steps ", options_.anneal_steps);
  METALEARN_CHECK(!(options_.batch_tasks && options_.carry_inner_state), ValueError,
                  "Reptile: carry_inner_state runs the tasks of a meta-batch one after another "
                  "and cannot be combined with batch_tasks");
  if (options_.batch_tasks) check_task_batching("Reptile", model_, options_.custom_loss);
}

template <class T>
optim::OptimizerState<T> Reptile<T>::validated_inner_state(
    const optim::OptimizerState<T>& state) const {
  // An optimizer over the model's parameters checks the buffers' names and shapes.
  const auto check = detail::make_inner_optimizer(options_, model_.parameters());
  check->load_state(state);
  return check->state();
}

template <class T>
LearnerState<T> Reptile<T>::state() const {
  LearnerState<T> out = detail::make_state(model_.named_parameters(), model_.named_buffers(),
                                           std::optional<optim::OptimizerState<T>>(), steps_taken_);
  if (options_.carry_inner_state) {
    optim::OptimizerState<T> inner = inner_state_;
    inner.buffers = detail::defined_copies(inner_state_.buffers);
    out.inner_optimizer = std::move(inner);
  }
  return out;
}

template <class T>
void Reptile<T>::load_state(const LearnerState<T>& state) {
  const char* function = "Reptile::load_state";
  detail::check_state(state, function, /*optimizer=*/false, options_.carry_inner_state,
                      /*buffers=*/true);
  const detail::StateLoad<T> load(model_.named_parameters(), model_.named_buffers(), state,
                                  function);
  optim::OptimizerState<T> inner;
  if (state.inner_optimizer) inner = validated_inner_state(*state.inner_optimizer);
  load.commit();
  inner_state_ = std::move(inner);
  steps_taken_ = state.steps;
}

template <class T>
bool Reptile<T>::classifying() const {
  return loss_.classifying();
}

template <class T>
Tensor<T> Reptile<T>::task_loss(const Tensor<T>& pred, const Targets<T>& target) const {
  return loss_(pred, target);
}

template <class T>
Generator Reptile<T>::train_generator(std::size_t index) const {
  return Generator(
      derive_seed({options_.seed, detail::kReptileTrainTag,
                   static_cast<std::uint64_t>(steps_taken_), static_cast<std::uint64_t>(index)}));
}

template <class T>
T Reptile<T>::current_outer_step() const {
  if (options_.anneal_steps <= 0) return options_.outer_step;
  const double frac =
      std::min(1.0, static_cast<double>(steps_taken_) / static_cast<double>(options_.anneal_steps));
  return static_cast<T>((1.0 - frac) * static_cast<double>(options_.outer_step) +
                        frac * static_cast<double>(options_.outer_step_final));
}

template <class T>
nn::ParamDict<T> Reptile<T>::inner_loop(const data::Task<T>& task, const nn::ParamDict<T>& theta,
                                        int steps, Index batch, Generator& gen,
                                        std::vector<double>* losses,
                                        optim::OptimizerState<T>* state) const {
  const Index n =
      task.support_x.defined() && task.support_x.dim() > 0 ? task.support_x.shape()[0] : 0;
  METALEARN_CHECK(steps == 0 || n > 0, ValueError,
                  "Reptile::adapt: the task has an empty support set; cannot take ", steps,
                  " inner step(s)");
  std::vector<Tensor<T>> phi;
  phi.reserve(theta.size());
  for (const auto& t : theta.values()) phi.push_back(t.detach().clone().requires_grad(true));
  nn::ParamDict<T> fast = theta.with_values(phi);
  if (steps == 0) return fast;

  const auto opt = detail::make_inner_optimizer(options_, phi);
  if (state != nullptr) {
    opt->load_state(*state);
    opt->set_lr(static_cast<double>(options_.inner_lr));
  }
  const bool full = batch <= 0 || batch >= n;
  detail::MiniBatchStream stream(n, full ? n : batch, gen);
  autograd::EnableGradGuard grad_on;
  for (int k = 0; k < steps; ++k) {
    Tensor<T> x = task.support_x;
    Targets<T> y = Targets<T>::support(task);
    if (!full) {
      const std::vector<Index> idx = stream.next();
      x = index_select(task.support_x, 0, idx);
      y = y.rows(idx);
    }
    Tensor<T> loss = task_loss(model_.forward(x, fast), y);
    if (losses != nullptr) losses->push_back(static_cast<double>(loss.item()));
    detail::descend(*opt, phi, loss);
  }
  if (state != nullptr) *state = opt->state();
  return fast;
}

template <class T>
Tensor<T> Reptile<T>::predict(const Adapted& adapted, const Tensor<T>& x) const {
  autograd::NoGradGuard no_grad;
  return model_.forward(x, adapted);
}

template <class T>
Tensor<T> Reptile<T>::predict_query(const data::Task<T>& task, const Adapted& fast) const {
  autograd::NoGradGuard no_grad;
  if (options_.transductive || !detail::has_batch_norm(model_)) {
    return model_.forward(task.query_x, fast);
  }
  // Each query example in a batch with the support set: its output depends on the
  // support set's statistics and on itself, never on the other queries.
  const Index q = task.query_x.shape()[0];
  const Index s = task.support_x.shape()[0];
  std::vector<Tensor<T>> rows;
  rows.reserve(static_cast<std::size_t>(q));
  for (Index i = 0; i < q; ++i) {
    Tensor<T> out =
        model_.forward(concat<T>({task.support_x, slice(task.query_x, 0, i, i + 1)}, 0), fast);
    rows.push_back(slice(out, 0, s, s + 1));
  }
  return concat(rows, 0);
}

template <class T>
double Reptile<T>::query_metric(const data::Task<T>& task, const nn::ParamDict<T>& w,
                                double* loss) const {
  Tensor<T> pred = predict_query(task, w);
  const Targets<T> target = Targets<T>::query(task);
  const double l = static_cast<double>(task_loss(pred, target).item());
  if (loss != nullptr) *loss = l;
  return classifying() ? accuracy(pred, target.labels) : l;
}

template <class T>
typename Reptile<T>::TaskResult Reptile<T>::run_task(const data::Task<T>& task, std::size_t index,
                                                     optim::OptimizerState<T>* state) const {
  TaskResult r;
  const nn::ParamDict<T> theta = model_.named_parameters();
  Generator gen = train_generator(index);
  const bool query =
      task.query_x.defined() && task.query_x.dim() > 0 && task.query_x.shape()[0] > 0;
  if (query) {
    const double acc = query_metric(task, theta, &r.pre_loss);
    if (classifying()) r.pre_acc = acc;
  }
  std::vector<double> losses;
  r.phi = inner_loop(task, theta, options_.inner_steps, options_.inner_batch, gen, &losses, state);
  for (double l : losses) r.meta_loss += l;
  if (!losses.empty()) r.meta_loss /= static_cast<double>(losses.size());
  if (query) {
    const double acc = query_metric(task, r.phi, &r.post_loss);
    if (classifying()) r.post_acc = acc;
  } else if (!losses.empty()) {
    r.pre_loss = losses.front();
    r.post_loss = losses.back();
  }
  return r;
}

template <class T>
nn::ParamDict<T> Reptile<T>::run_stacked(const data::TaskBatch<T>& batch, StepStats& s) const {
  const StackedTasks<T> st = stack_tasks(batch, "Reptile (batch_tasks)");
  const Index tasks = st.tasks;
  const Index n = st.support_x.dim() > 1 ? st.support_x.shape()[1] : 0;
  const int steps = options_.inner_steps;
  METALEARN_CHECK(steps == 0 || n > 0, ValueError,
                  "Reptile::meta_step: the tasks have empty support sets; cannot take ", steps,
                  " inner step(s)");
  const nn::ParamDict<T> theta = model_.named_parameters();
  const bool query = st.query_x.defined() && st.query_x.dim() > 1 && st.query_x.shape()[1] > 0;
  // The query loss of weights `w` and, when classifying, their accuracy.
  const auto measure = [&](const nn::ParamDict<T>& w) {
    autograd::NoGradGuard no_grad;
    const Tensor<T> pred = model_outputs(model_, st.query_x, w, tasks);
    std::pair<double, std::optional<double>> out{
        static_cast<double>(task_loss(pred, st.query_y).item()), std::nullopt};
    if (classifying()) out.second = accuracy(pred, st.query_y.labels);
    return out;
  };
  std::vector<Tensor<T>> phi;
  {
    autograd::NoGradGuard no_grad;
    const nn::ParamDict<T> copies = per_task_copies(theta, tasks);
    if (query) std::tie(s.pre_loss, s.pre_accuracy) = measure(copies);
    for (const auto& t : copies.values()) phi.push_back(t.detach().requires_grad(true));
  }
  const nn::ParamDict<T> fast = theta.with_values(phi);
  if (steps == 0) {
    if (query) std::tie(s.post_loss, s.post_accuracy) = measure(fast);
    return fast;
  }

  // Each task's mini-batch order comes from the generator its per-task run would use.
  const Index size = options_.inner_batch;
  const bool full = size <= 0 || size >= n;
  std::vector<Generator> gens;
  std::vector<detail::MiniBatchStream> streams;
  gens.reserve(batch.size());
  streams.reserve(batch.size());
  for (std::size_t b = 0; b < batch.size(); ++b) {
    gens.push_back(train_generator(b));
    streams.emplace_back(n, full ? n : size, gens.back());
  }
  const auto opt = detail::make_inner_optimizer(options_, phi);
  autograd::EnableGradGuard grad_on;
  std::vector<double> losses;
  for (int k = 0; k < steps; ++k) {
    Tensor<T> x = st.support_x;
    Targets<T> y = st.support_y;
    if (!full) {
      std::vector<Tensor<T>> xs;
      std::vector<Targets<T>> ys;
      for (std::size_t b = 0; b < batch.size(); ++b) {
        const std::vector<Index> idx = streams[b].next();
        xs.push_back(index_select(batch[b].support_x, 0, idx));
        ys.push_back(Targets<T>::support(batch[b]).rows(idx));
      }
      x = stack(xs, 0);
      y = Targets<T>::join(ys);
    }
    const Tensor<T> mean = task_loss(model_outputs(model_, x, fast, tasks), y);
    losses.push_back(static_cast<double>(mean.item()));
    // The sum of the tasks' losses: its gradient w.r.t. each task's weights is that
    // task's own gradient.
    detail::descend(*opt, phi, mul_scalar(mean, static_cast<T>(tasks)));
  }
  for (double l : losses) s.meta_loss += l;
  s.meta_loss /= static_cast<double>(losses.size());
  if (query) {
    std::tie(s.post_loss, s.post_accuracy) = measure(fast);
  } else {
    s.pre_loss = losses.front();
    s.post_loss = losses.back();
  }
  return fast;
}

template <class T>
MetaGradient<T> Reptile<T>::meta_gradient(const data::TaskBatch<T>& batch) const {
  METALEARN_CHECK(!batch.empty(), ValueError, "Reptile::meta_gradient: empty task batch");
  const nn::ParamDict<T> theta = model_.named_parameters();
  MetaGradient<T> out;
  out.tasks = batch.size();
  // sum_i (theta - phi_i), summed in task order; phi(i, j) is the data of task i's
  // parameter j.
  const auto sum_directions = [&](const auto& phi) {
    autograd::NoGradGuard no_grad;
    std::size_t j = 0;
    for (const auto& [name, p] : theta) {
      Tensor<T> sum = zeros<T>(p.shape());
      T* acc = sum.data();
      const T* pp = p.data();
      const Index n = p.numel();
      for (std::size_t i = 0; i < batch.size(); ++i) {
        const T* q = phi(i, j);
        for (Index k = 0; k < n; ++k) acc[k] += pp[k] - q[k];
      }
      out.sum.insert(name, std::move(sum));
      ++j;
    }
  };
  if (options_.batch_tasks) {
    out.stats.tasks = batch.size();
    const std::vector<Tensor<T>> phi = run_stacked(batch, out.stats).values();
    const std::vector<Tensor<T>> params = theta.values();
    sum_directions([&](std::size_t i, std::size_t j) {
      return phi[j].data() + static_cast<Index>(i) * params[j].numel();
    });
    return out;
  }

  std::vector<TaskResult> results(batch.size());
  // The carried state advances on a copy, which apply() makes the learner's.
  optim::OptimizerState<T> state = inner_state_;
  if (options_.carry_inner_state) {
    for (std::size_t i = 0; i < batch.size(); ++i) results[i] = run_task(batch[i], i, &state);
    out.carried = std::move(state);
  } else {
    run_tasks(pool_, batch.size(),
              [&](std::size_t i) { results[i] = run_task(batch[i], i, nullptr); });
  }
  std::vector<std::vector<Tensor<T>>> phis;
  for (const auto& r : results) phis.push_back(r.phi.values());
  if (options_.check_finite) {
    // Name the task whose adapted weights are not finite (the sum would hide it).
    std::vector<std::string> names;
    for (const auto& [name, p] : theta) names.emplace_back(name);
    for (std::size_t i = 0; i < phis.size(); ++i) {
      detail::check_all_finite(names, phis[i],
                               "Reptile::meta_gradient (meta-step " + std::to_string(steps_taken_) +
                                   "), task " + std::to_string(i),
                               "the adapted weights of", "");
    }
  }
  sum_directions([&](std::size_t i, std::size_t j) { return phis[i][j].data(); });

  StepStats& s = out.stats;
  s.tasks = batch.size();
  double pre_loss = 0.0;
  double pre_acc = 0.0;
  double post_acc = 0.0;
  for (const auto& r : results) {
    s.meta_loss += r.meta_loss;
    pre_loss += r.pre_loss;
    s.post_loss += r.post_loss;
    pre_acc += r.pre_acc;
    post_acc += r.post_acc;
  }
  const double n = static_cast<double>(batch.size());
  s.meta_loss /= n;
  s.pre_loss = pre_loss / n;
  s.post_loss /= n;
  if (classifying() && results.front().pre_acc >= 0.0) {
    s.pre_accuracy = pre_acc / n;
    s.post_accuracy = post_acc / n;
  }
  return out;
}

template <class T>
void Reptile<T>::apply_checked(const MetaGradient<T>& gradient,
                               const detail::FiniteStepGuard<T>& finite, const char* caller) {
  const std::string function =
      std::string(caller) + " (meta-step " + std::to_string(steps_taken_) + ")";
  METALEARN_CHECK(gradient.carried.has_value() == options_.carry_inner_state, ValueError, function,
                  ": the meta-gradient ", gradient.carried ? "carries" : "lacks",
                  " an inner-optimizer state but carry_inner_state is ",
                  options_.carry_inner_state ? "on" : "off");
  optim::OptimizerState<T> carried;
  if (gradient.carried) carried = validated_inner_state(*gradient.carried);
  finite.check_gradients(gradient.sum.values(), function, "the Reptile direction of");
  // theta <- theta - epsilon * sum / tasks, i.e. theta + epsilon * mean_i (phi_i - theta).
  const T scale = current_outer_step() / static_cast<T>(gradient.tasks);
  {
    autograd::NoGradGuard no_grad;
    auto g = gradient.sum.begin();
    for (const auto& [name, p] : model_.named_parameters()) {
      T* pp = p.data();
      const T* d = (*g).second.data();
      const Index n = p.numel();
      for (Index k = 0; k < n; ++k) pp[k] -= scale * d[k];
      p.bump_version();
      ++g;
    }
  }
  finite.check_updated(function);
  if (gradient.carried) inner_state_ = std::move(carried);
  ++steps_taken_;
}

template <class T>
void Reptile<T>::apply(const MetaGradient<T>& gradient) {
  const nn::ParamDict<T> theta = model_.named_parameters();
  detail::check_meta_gradient(gradient, theta, "Reptile::apply");
  const detail::FiniteStepGuard<T> finite(options_.check_finite, theta, nullptr);
  apply_checked(gradient, finite, "Reptile::apply");
}

template <class T>
StepStats Reptile<T>::meta_step(const data::TaskBatch<T>& batch) {
  const detail::FiniteStepGuard<T> finite(options_.check_finite, model_.named_parameters(), nullptr,
                                          model_.named_buffers());
  const MetaGradient<T> gradient =
      detail::gradient_or_restore(finite, [&] { return meta_gradient(batch); });
  apply_checked(gradient, finite, "Reptile::meta_step");
  return gradient.stats;
}

template <class T>
typename Reptile<T>::Adapted Reptile<T>::adapt(const data::Task<T>& task, std::optional<int> steps,
                                               std::optional<Index> batch,
                                               std::uint64_t stream) const {
  const int k = steps.value_or(options_.eval_inner_steps);
  METALEARN_CHECK(k >= 0, ValueError, "Reptile::adapt: ", k, " inner steps (must be >= 0)");
  Generator gen(derive_seed({options_.seed, detail::kReptileAdaptTag, stream}));
  // A carried state is copied: every adaptation starts from the state training reached.
  optim::OptimizerState<T> state = inner_state_;
  nn::ParamDict<T> fast =
      inner_loop(task, model_.named_parameters(), k, batch.value_or(options_.eval_batch()), gen,
                 nullptr, options_.carry_inner_state ? &state : nullptr);
  std::vector<Tensor<T>> out;
  for (const auto& t : fast.values()) out.push_back(t.detach());
  return fast.with_values(std::move(out));
}

template <class T>
EvalResult Reptile<T>::evaluate(const data::AnyTaskSampler<T>& sampler, std::size_t episodes,
                                std::optional<int> steps) const {
  std::vector<double> values(episodes);
  pool_.run(episodes, [&](std::size_t i) {
    Generator gen = episode_generator(options_.seed, i);
    data::Task<T> task = sampler.sample(gen);
    const Adapted fast = adapt(task, steps, std::nullopt, static_cast<std::uint64_t>(i));
    values[i] = query_metric(task, fast, nullptr);
  });
  return EvalResult::from_values(std::move(values));
}

static_assert(MetaLearner<Reptile<float>> && MetaLearner<Reptile<double>>);

}  // namespace metalearn::algorithms
