#pragma once
/// @file
/// Conditional Neural Process (Garnelo et al., ICML 2018): encoder-decoder
/// meta-learning. An encoder maps every (x, y) of a task's context set (its support
/// set) to a representation r_i; their mean r summarises the set in an order-invariant
/// way; a decoder maps (r, x*) to a Gaussian over y* for every target x* (the query
/// set). Training is gradient descent on the targets' predictive log-likelihood over
/// many tasks: no inner loop, and a new task is "learned" by one forward pass over its
/// context.
///
/// @code{.unparsed}
///   r = mean_i enc([x_i, y_i])              encoder: MLP, ReLU between layers
///   [mu, s] = dec([r, x*])                  decoder: MLP, output 2 * y_dim
///   sigma = floor + (1 - floor) * softplus(s)
///   loss = -mean_targets sum_dims log N(y*; mu, sigma^2)
/// @endcode
///
/// @code
/// algorithms::ConditionalNeuralProcess<float> cnp(1, 1, gen);         // x and y in R^1
/// data::GaussianProcessTasks<float> gp({.targets_include_context = true});
/// data::MetaBatchSampler<float> batches(gp, {.batch = 16, .seed = 1});
/// for (int s = 0; s < 100'000; ++s) cnp.meta_step(batches.next());
/// auto r = cnp.adapt(task);                          // the context's representation
/// auto prediction = cnp.predictive(r, task.query_x); // mean and standard deviation
/// @endcode
// SPDX-License-Identifier: MIT

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "metalearn/algorithms/common.hpp"
#include "metalearn/algorithms/meta_learner.hpp"
#include "metalearn/algorithms/neural_process/common.hpp"
#include "metalearn/autograd/grad.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/thread_pool.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/data/task_sampler.hpp"
#include "metalearn/nn/modules/mlp.hpp"
#include "metalearn/nn/param_dict.hpp"
#include "metalearn/optim/adam.hpp"
#include "metalearn/tensor/ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::algorithms {

/// Options of ConditionalNeuralProcess, with the reference implementation's defaults
/// (DeepMind's neural-processes notebook: encoder 4 x 128, decoder 2 x 128, Adam 1e-4).
struct CnpOptions {
  /// Output sizes of the encoder's layers; the last is the size of r.
  std::vector<Index> encoder{128, 128, 128, 128};
  /// Hidden sizes of the decoder (its output layer, 2 * y_dim, is added).
  std::vector<Index> decoder{128, 128};
  /// Lower bound of the predictive standard deviation.
  double sigma_floor = 0.1;
  /// Glorot-uniform weights and zero biases, as the reference initialises its layers
  /// (false: each Linear's default, PyTorch's U(+-1/sqrt(in))).
  bool glorot_init = true;
  /// Adam's learning rate.
  double lr = 1e-4;
  /// Threads running the tasks of a meta-batch (results equal the serial run).
  int threads = 1;
  /// Seed of evaluation episodes.
  std::uint64_t seed = 0;
  /// Check every meta-step for NaN or infinite values (see MamlOptions::check_finite).
  bool check_finite = true;
};

/// The Conditional Neural Process on the meta-learner contract (context = support
/// set, targets = query set; inputs [n, x_dim], targets [n, y_dim]).
template <class T = float>
class ConditionalNeuralProcess {
 public:
  using value_type = T;
  /// What adapt() returns: the representation r of the task's context, [1, r_dim].
  using Adapted = Tensor<T>;

  /// Builds the encoder and decoder for inputs of `x_dim` and targets of `y_dim`
  /// features, initialised from `gen`.
  /// @throws ValueError on non-positive sizes, a floor outside [0, 1) or a learning rate
  /// that is not positive.
  ConditionalNeuralProcess(Index x_dim, Index y_dim, Generator& gen, CnpOptions options = {});

  /// The gradient of the tasks' losses (the negative mean log-likelihood of their
  /// targets) w.r.t.\ meta_parameters(), summed over the tasks; nothing applied.
  [[nodiscard]] MetaGradient<T> meta_gradient(const data::TaskBatch<T>& batch) const;
  /// One Adam step along sum / tasks.
  void apply(const MetaGradient<T>& gradient);
  /// apply(meta_gradient(batch)).
  StepStats meta_step(const data::TaskBatch<T>& batch);

  /// The representation of `task`'s context (its support set).
  [[nodiscard]] Adapted adapt(const data::Task<T>& task) const;
  /// The predictive distribution at inputs `x` [M, x_dim] given the representation.
  [[nodiscard]] GaussianPrediction<T> predictive(const Adapted& adapted, const Tensor<T>& x) const;
  /// The predictive mean and standard deviation side by side, [M, 2 * y_dim].
  [[nodiscard]] Tensor<T> predict(const Adapted& adapted, const Tensor<T>& x) const;
  /// The mean log-likelihood per target point of `task`'s query set given its context
  /// (differentiable w.r.t.\ `params`, named as meta_parameters()).
  [[nodiscard]] Tensor<T> log_likelihood(const data::Task<T>& task,
                                         const nn::ParamDict<T>& params) const;

  /// Mean and 95% interval over `episodes` tasks of `sampler` of the query
  /// log-likelihood per target point (higher is better).
  [[nodiscard]] EvalResult evaluate(const data::AnyTaskSampler<T>& sampler,
                                    std::size_t episodes) const;

  /// The encoder's parameters as "encoder.<name>", then the decoder's as "decoder.<name>".
  [[nodiscard]] nn::ParamDict<T> meta_parameters() const;
  /// Parameters, Adam's state and steps_taken().
  [[nodiscard]] LearnerState<T> state() const;
  /// Continues from a state(): all or nothing.
  /// @throws ValueError / ShapeError naming the offending entry.
  void load_state(const LearnerState<T>& state);

  [[nodiscard]] const CnpOptions& options() const { return options_; }
  [[nodiscard]] std::int64_t steps_taken() const { return steps_taken_; }
  [[nodiscard]] Index x_dim() const { return x_dim_; }
  [[nodiscard]] Index y_dim() const { return y_dim_; }

 private:
  void check_task(const data::Task<T>& task, const char* function) const;
  [[nodiscard]] Tensor<T> represent(const Tensor<T>& cx, const Tensor<T>& cy,
                                    const nn::ParamDict<T>& params) const;
  [[nodiscard]] GaussianPrediction<T> decode(const Tensor<T>& r, const Tensor<T>& x,
                                             const nn::ParamDict<T>& params) const;
  void apply_checked(const MetaGradient<T>& gradient, const detail::FiniteStepGuard<T>& finite,
                     const char* caller);

  Index x_dim_, y_dim_;
  CnpOptions options_;
  std::unique_ptr<nn::MLP<T>> encoder_;
  std::unique_ptr<nn::MLP<T>> decoder_;
  std::unique_ptr<optim::Adam<T>> outer_;
  mutable ThreadPool pool_;
  std::int64_t steps_taken_ = 0;
};

// ---- definitions -------------------------------------------------------------------

template <class T>
ConditionalNeuralProcess<T>::ConditionalNeuralProcess(Index x_dim, Index y_dim, Generator& gen,
                                                      CnpOptions options)
    : x_dim_(x_dim),
      y_dim_(y_dim),
      options_(std::move(options)),
      pool_(thread_count(options_.threads, "ConditionalNeuralProcess")) {
  const char* who = "ConditionalNeuralProcess";
  METALEARN_CHECK(x_dim > 0 && y_dim > 0, ValueError, who, ": x_dim (", x_dim, ") and y_dim (",
                  y_dim, ") must be positive");
  METALEARN_CHECK(!options_.encoder.empty(), ValueError, who,
                  ": the encoder needs at least one layer (its last size is r's)");
  for (Index n : options_.encoder) {
    METALEARN_CHECK(n > 0, ValueError, who, ": encoder layer size ", n, " must be positive");
  }
  for (Index n : options_.decoder) {
    METALEARN_CHECK(n > 0, ValueError, who, ": decoder layer size ", n, " must be positive");
  }
  METALEARN_CHECK(options_.sigma_floor >= 0.0 && options_.sigma_floor < 1.0, ValueError, who,
                  ": sigma_floor ", options_.sigma_floor, " must lie in [0, 1)");
  METALEARN_CHECK(options_.lr > 0.0 && std::isfinite(options_.lr), ValueError, who,
                  ": learning rate ", options_.lr, " must be positive and finite");
  std::vector<Index> enc{x_dim + y_dim};
  enc.insert(enc.end(), options_.encoder.begin(), options_.encoder.end());
  std::vector<Index> dec{options_.encoder.back() + x_dim};
  dec.insert(dec.end(), options_.decoder.begin(), options_.decoder.end());
  dec.push_back(2 * y_dim);
  encoder_ = std::make_unique<nn::MLP<T>>(enc, gen);
  decoder_ = std::make_unique<nn::MLP<T>>(dec, gen);
  if (options_.glorot_init) {
    detail::glorot_init(*encoder_, gen);
    detail::glorot_init(*decoder_, gen);
  }
  outer_ = std::make_unique<optim::Adam<T>>(meta_parameters().values(),
                                            optim::AdamOptions{.lr = options_.lr});
}

template <class T>
nn::ParamDict<T> ConditionalNeuralProcess<T>::meta_parameters() const {
  nn::ParamDict<T> out;
  detail::insert_prefixed(out, "encoder.", encoder_->named_parameters());
  detail::insert_prefixed(out, "decoder.", decoder_->named_parameters());
  return out;
}

template <class T>
void ConditionalNeuralProcess<T>::check_task(const data::Task<T>& task,
                                             const char* function) const {
  const auto check = [&](const Tensor<T>& t, Index features, const char* what, bool need_rows) {
    METALEARN_CHECK(
        t.defined() && t.dim() == 2 && t.shape()[1] == features && (!need_rows || t.shape()[0] > 0),
        ShapeError, function, ": ", what, " has shape ", t.defined() ? t.shape() : Shape{},
        "; expected [n, ", features, "]", need_rows ? " with n >= 1" : "");
  };
  check(task.support_x, x_dim_, "the context inputs (support_x)", true);
  check(task.support_y, y_dim_, "the context targets (support_y)", true);
  METALEARN_CHECK(task.support_x.shape()[0] == task.support_y.shape()[0], ShapeError, function,
                  ": ", task.support_x.shape()[0], " context inputs but ",
                  task.support_y.shape()[0], " context targets");
}

template <class T>
Tensor<T> ConditionalNeuralProcess<T>::represent(const Tensor<T>& cx, const Tensor<T>& cy,
                                                 const nn::ParamDict<T>& params) const {
  const Tensor<T> h =
      encoder_->forward(concat<T>({cx, cy}, 1), detail::unprefixed(params, "encoder."));
  return mean(h, 0, /*keepdim=*/true);
}

template <class T>
GaussianPrediction<T> ConditionalNeuralProcess<T>::decode(const Tensor<T>& r, const Tensor<T>& x,
                                                          const nn::ParamDict<T>& params) const {
  const Index m = x.shape()[0];
  const Tensor<T> input = concat<T>({expand(r, Shape{m, r.shape()[1]}), x}, 1);
  const Tensor<T> out = decoder_->forward(input, detail::unprefixed(params, "decoder."));
  return detail::gaussian_head(out, y_dim_, options_.sigma_floor);
}

template <class T>
Tensor<T> ConditionalNeuralProcess<T>::log_likelihood(const data::Task<T>& task,
                                                      const nn::ParamDict<T>& params) const {
  const char* function = "ConditionalNeuralProcess::log_likelihood";
  check_task(task, function);
  METALEARN_CHECK(task.query_x.defined() && task.query_y.defined() && task.query_x.dim() == 2 &&
                      task.query_y.dim() == 2 && task.query_x.shape()[1] == x_dim_ &&
                      task.query_y.shape()[1] == y_dim_ && task.query_x.shape()[0] > 0 &&
                      task.query_x.shape()[0] == task.query_y.shape()[0],
                  ShapeError, function, ": targets (query set) of shapes ",
                  task.query_x.defined() ? task.query_x.shape() : Shape{}, " and ",
                  task.query_y.defined() ? task.query_y.shape() : Shape{}, "; expected [m, ",
                  x_dim_, "] and [m, ", y_dim_, "] with m >= 1");
  const GaussianPrediction<T> p =
      decode(represent(task.support_x, task.support_y, params), task.query_x, params);
  // The log-density summed over the target's features, averaged over the target points.
  return mul_scalar(sum(detail::gaussian_log_density(task.query_y, p.mean, p.stddev)),
                    T(1) / static_cast<T>(task.query_x.shape()[0]));
}

template <class T>
MetaGradient<T> ConditionalNeuralProcess<T>::meta_gradient(const data::TaskBatch<T>& batch) const {
  METALEARN_CHECK(!batch.empty(), ValueError,
                  "ConditionalNeuralProcess::meta_gradient: empty task batch");
  const nn::ParamDict<T> named = meta_parameters();
  return detail::sum_task_gradients(pool_, batch, named, [&](std::size_t i) {
    return TaskLoss<T>{neg(log_likelihood(batch[i], named))};
  });
}

template <class T>
void ConditionalNeuralProcess<T>::apply_checked(const MetaGradient<T>& gradient,
                                                const detail::FiniteStepGuard<T>& finite,
                                                const char* caller) {
  const std::string function =
      std::string(caller) + " (meta-step " + std::to_string(steps_taken_) + ")";
  detail::descend(*outer_, gradient, finite, function);
  ++steps_taken_;
}

template <class T>
void ConditionalNeuralProcess<T>::apply(const MetaGradient<T>& gradient) {
  const nn::ParamDict<T> named = meta_parameters();
  detail::check_meta_gradient(gradient, named, "ConditionalNeuralProcess::apply");
  const detail::FiniteStepGuard<T> finite(options_.check_finite, named, outer_.get());
  apply_checked(gradient, finite, "ConditionalNeuralProcess::apply");
}

template <class T>
StepStats ConditionalNeuralProcess<T>::meta_step(const data::TaskBatch<T>& batch) {
  const detail::FiniteStepGuard<T> finite(options_.check_finite, meta_parameters(), outer_.get());
  const MetaGradient<T> gradient = meta_gradient(batch);
  apply_checked(gradient, finite, "ConditionalNeuralProcess::meta_step");
  return gradient.stats;
}

template <class T>
typename ConditionalNeuralProcess<T>::Adapted ConditionalNeuralProcess<T>::adapt(
    const data::Task<T>& task) const {
  check_task(task, "ConditionalNeuralProcess::adapt");
  autograd::NoGradGuard no_grad;
  return represent(task.support_x, task.support_y, meta_parameters());
}

template <class T>
GaussianPrediction<T> ConditionalNeuralProcess<T>::predictive(const Adapted& adapted,
                                                              const Tensor<T>& x) const {
  const char* function = "ConditionalNeuralProcess::predictive";
  const Index r_dim = options_.encoder.back();
  METALEARN_CHECK(adapted.defined() && adapted.dim() == 2 && adapted.shape()[0] == 1 &&
                      adapted.shape()[1] == r_dim,
                  ShapeError, function, ": representation of shape ",
                  adapted.defined() ? adapted.shape() : Shape{}, "; expected [1, ", r_dim,
                  "] (from adapt())");
  METALEARN_CHECK(x.defined() && x.dim() == 2 && x.shape()[1] == x_dim_, ShapeError, function,
                  ": inputs of shape ", x.defined() ? x.shape() : Shape{}, "; expected [m, ",
                  x_dim_, "]");
  autograd::NoGradGuard no_grad;
  return decode(adapted, x, meta_parameters());
}

template <class T>
Tensor<T> ConditionalNeuralProcess<T>::predict(const Adapted& adapted, const Tensor<T>& x) const {
  const GaussianPrediction<T> p = predictive(adapted, x);
  return concat<T>({p.mean, p.stddev}, 1);
}

template <class T>
EvalResult ConditionalNeuralProcess<T>::evaluate(const data::AnyTaskSampler<T>& sampler,
                                                 std::size_t episodes) const {
  std::vector<double> values(episodes);
  const nn::ParamDict<T> params = meta_parameters();
  pool_.run(episodes, [&](std::size_t i) {
    autograd::NoGradGuard no_grad;
    Generator gen = episode_generator(options_.seed, i);
    const data::Task<T> task = sampler.sample(gen);
    values[i] = static_cast<double>(log_likelihood(task, params).item());
  });
  return EvalResult::from_values(std::move(values));
}

template <class T>
LearnerState<T> ConditionalNeuralProcess<T>::state() const {
  return detail::make_state(meta_parameters(), nn::ParamDict<T>(), std::optional(outer_->state()),
                            steps_taken_);
}

template <class T>
void ConditionalNeuralProcess<T>::load_state(const LearnerState<T>& state) {
  const char* function = "ConditionalNeuralProcess::load_state";
  detail::check_state(state, function, /*optimizer=*/true, /*inner=*/false, /*buffers=*/false);
  const detail::StateLoad<T> load(meta_parameters(), nn::ParamDict<T>(), state, function);
  outer_->load_state(*state.optimizer);  // checks everything before it changes anything
  load.commit();
  steps_taken_ = state.steps;
}

static_assert(MetaLearner<ConditionalNeuralProcess<float>> &&
              MetaLearner<ConditionalNeuralProcess<double>>);

}  // namespace metalearn::algorithms
