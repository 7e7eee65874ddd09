#pragma once
/// @file
/// Neural Process with a latent path (Garnelo et al.\ 2018, "Neural Processes"; the
/// deterministic path beside it as in Kim et al.\ 2019): a global latent variable z
/// carries the uncertainty about the function, so samples of z give coherent samples of
/// functions.
///
/// @code{.unparsed}
///   r = mean_i det([x_i, y_i])                          deterministic path
///   s = mean_i lat([x_i, y_i]);  h = relu(W_h s + b_h)  latent path
///   q(z | set) = N(W_mu h + b_mu, (0.1 + 0.9 sigmoid(W_s h + b_s))^2)
///   [mu, u] = dec([r, z, x*]);  sigma = floor + (1 - floor) softplus(u)
/// @endcode
///
/// Training maximises the ELBO with the posterior encoded from the targets (which hold
/// the context, data::GaussianProcessOptions::targets_include_context) and the prior
/// from the context:
/// @code{.unparsed}
///   loss = -(1/M) sum_targets log p(y* | z, r, x*) + KL(q(z | targets) || q(z | context)) / M,
///   z = mu + sigma * eps drawn from the posterior (one sample, reparameterised).
/// @endcode
/// With attention_heads > 0 this is the Attentive Neural Process (Kim et al. 2019): the
/// deterministic path's mean is replaced by multi-head cross-attention of each target
/// over the context, queries and keys being the inputs through an MLP and values the
/// per-point representations (optionally after self-attention over the context):
/// @code{.unparsed}
///   r*(x*) = MHA(q = mlp(x*), k = mlp(x_i), v = det([x_i, y_i]))
/// @endcode
/// The evaluation log-likelihood is a Monte Carlo estimate with z from the prior:
/// @code{.unparsed}
///   log p(y* | context) ~ log (1/K) sum_k prod_targets p(y* | z_k, r, x*),
/// @endcode
/// reported per target point (K = likelihood_samples).
// SPDX-License-Identifier: MIT

#include <cmath>
#include <cstdint>
#include <memory>
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
#include "metalearn/nn/modules/attention.hpp"
#include "metalearn/nn/modules/mlp.hpp"
#include "metalearn/nn/param_dict.hpp"
#include "metalearn/optim/adam.hpp"
#include "metalearn/tensor/factory.hpp"
#include "metalearn/tensor/ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::algorithms {

/// Options of NeuralProcess, with the sizes of DeepMind's neural-processes code
/// (encoders 3 x 128, latent 128, decoder 2 x 128; Adam 1e-4).
struct NpOptions {
  /// Output sizes of the deterministic encoder's layers (the last is r's size; empty:
  /// no deterministic path, the original latent-only NP).
  std::vector<Index> deterministic{128, 128, 128};
  /// Output sizes of the latent encoder's layers before the mean over the set.
  std::vector<Index> latent_encoder{128, 128, 128};
  /// Size of z.
  Index latent = 128;
  /// Hidden sizes of the decoder (its output layer, 2 * y_dim, is added).
  std::vector<Index> decoder{128, 128};
  /// Heads of the cross-attention of the deterministic path (0: the mean over the
  /// context, the NP; the ANP reference uses 8). Needs a deterministic path.
  Index attention_heads = 0;
  /// Output sizes of the MLP the inputs pass through to become queries and keys.
  std::vector<Index> attention_mlp{128, 128};
  /// Self-attention (attention_heads heads) over the context's deterministic
  /// representations before the cross-attention.
  bool self_attention = false;
  /// Lower bound of the predictive standard deviation.
  double sigma_floor = 0.1;
  /// Glorot-uniform weights and zero biases, as the reference initialises its layers
  /// (false: each Linear's default, PyTorch's U(+-1/sqrt(in))).
  bool glorot_init = true;
  double lr = 1e-4;
  /// Samples of z in the evaluation log-likelihood.
  int likelihood_samples = 50;
  int threads = 1;
  /// Seed of the training noise (per meta-step and task) and of evaluation episodes.
  std::uint64_t seed = 0;
  bool check_finite = true;
};

/// The representation of a context: the deterministic r and the prior over z.
template <class T>
struct NpContext {
  Tensor<T> r;  ///< [1, r_dim]: the mean (undefined without a deterministic path or with attention)
  Tensor<T> keys;     ///< [C, key_dim]: the context inputs through the attention MLP (attention)
  Tensor<T> values;   ///< [C, r_dim]: the per-point representations (attention)
  Tensor<T> z_mean;   ///< [1, latent]
  Tensor<T> z_sigma;  ///< [1, latent]
};

/// The latent Neural Process on the meta-learner contract (context = support set,
/// targets = query set).
template <class T = float>
class NeuralProcess {
 public:
  using value_type = T;
  /// What adapt() returns: the context's representation and prior over z.
  using Adapted = NpContext<T>;

  /// @throws ValueError on non-positive sizes, a floor outside [0, 1), a learning rate
  /// that is not positive or fewer than one likelihood sample.
  NeuralProcess(Index x_dim, Index y_dim, Generator& gen, NpOptions options = {});

  /// The gradient of the tasks' negative ELBO per target w.r.t.\ meta_parameters(),
  /// summed over the tasks. The noise of a task at meta-step t comes from (seed, t, a
  /// hash of the task's data), not from its place in the batch, so a meta-batch split
  /// over several calls (or processes) draws the noise it draws whole.
  [[nodiscard]] MetaGradient<T> meta_gradient(const data::TaskBatch<T>& batch) const;
  void apply(const MetaGradient<T>& gradient);
  StepStats meta_step(const data::TaskBatch<T>& batch);

  /// The representation of `task`'s context (its support set).
  [[nodiscard]] Adapted adapt(const data::Task<T>& task) const;
  /// The predictive distribution at `x` for a given z ([1, latent]).
  [[nodiscard]] GaussianPrediction<T> predictive(const Adapted& adapted, const Tensor<T>& z,
                                                 const Tensor<T>& x) const;
  /// The predictive mean and standard deviation at `x` with z at the prior's mean,
  /// side by side, [M, 2 * y_dim] (a sample of a function: predictive() with a sampled z).
  [[nodiscard]] Tensor<T> predict(const Adapted& adapted, const Tensor<T>& x) const;

  /// The negative ELBO per target point of `task` with posterior noise `eps` ([1, latent]),
  /// differentiable w.r.t.\ `params` (named as meta_parameters()).
  [[nodiscard]] Tensor<T> loss(const data::Task<T>& task, const nn::ParamDict<T>& params,
                               const Tensor<T>& eps) const;
  /// The Monte Carlo log-likelihood per target point of `task`'s query set given its
  /// context, with `samples` draws of z from the prior using `gen`.
  [[nodiscard]] double log_likelihood(const data::Task<T>& task, int samples, Generator& gen) const;

  /// Mean and 95% interval over `episodes` tasks of log_likelihood() per target point.
  [[nodiscard]] EvalResult evaluate(const data::AnyTaskSampler<T>& sampler,
                                    std::size_t episodes) const;

  /// "deterministic.<name>", "latent.<name>", "latent_head.<name>", "decoder.<name>".
  [[nodiscard]] nn::ParamDict<T> meta_parameters() const;
  [[nodiscard]] LearnerState<T> state() const;
  void load_state(const LearnerState<T>& state);

  [[nodiscard]] const NpOptions& options() const { return options_; }
  [[nodiscard]] std::int64_t steps_taken() const { return steps_taken_; }

 private:
  void check_set(const Tensor<T>& x, const Tensor<T>& y, const char* what,
                 const char* function) const;
  /// The set's representation; the deterministic path only when `deterministic`.
  [[nodiscard]] Adapted encode(const Tensor<T>& x, const Tensor<T>& y,
                               const nn::ParamDict<T>& params, bool deterministic = true) const;
  [[nodiscard]] GaussianPrediction<T> decode(const Adapted& c, const Tensor<T>& z,
                                             const Tensor<T>& x,
                                             const nn::ParamDict<T>& params) const;
  void apply_checked(const MetaGradient<T>& gradient, const detail::FiniteStepGuard<T>& finite,
                     const char* caller);

  Index x_dim_, y_dim_;
  NpOptions options_;
  std::unique_ptr<nn::MLP<T>> deterministic_;  // null without a deterministic path
  std::unique_ptr<nn::MLP<T>> latent_;
  std::unique_ptr<nn::MLP<T>> latent_head_;  // s -> [hidden], then hidden -> [mu, log sigma]
  std::unique_ptr<nn::MLP<T>> decoder_;
  std::unique_ptr<nn::MLP<T>> attention_mlp_;                   // attention only
  std::unique_ptr<nn::MultiheadAttention<T>> cross_attention_;  // attention only
  std::unique_ptr<nn::MultiheadAttention<T>> self_attention_;   // self_attention only
  std::unique_ptr<optim::Adam<T>> outer_;
  mutable ThreadPool pool_;
  std::int64_t steps_taken_ = 0;
};

// ---- definitions -------------------------------------------------------------------

namespace detail {
inline constexpr std::uint64_t kNpTrainTag = 0x4e50'7472'6169'6eULL;  // "NPtrain"
inline constexpr std::uint64_t kNpEvalTag = 0x4e50'6576'616cULL;      // "NPeval"

/// FNV-1a over the bytes of a task's four tensors: the task's identity, whatever its
/// place in a meta-batch.
template <class T>
std::uint64_t task_fingerprint(const data::Task<T>& task) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const Tensor<T>* t : {&task.support_x, &task.support_y, &task.query_x, &task.query_y}) {
    if (!t->defined()) continue;
    const auto* bytes = reinterpret_cast<const unsigned char*>(t->data());
    const std::size_t n = static_cast<std::size_t>(t->numel()) * sizeof(T);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ bytes[i]) * 0x100000001b3ULL;
  }
  return h;
}
}  // namespace detail

template <class T>
NeuralProcess<T>::NeuralProcess(Index x_dim, Index y_dim, Generator& gen, NpOptions options)
    : x_dim_(x_dim),
      y_dim_(y_dim),
      options_(std::move(options)),
      pool_(thread_count(options_.threads, "NeuralProcess")) {
  const char* who = "NeuralProcess";
  METALEARN_CHECK(x_dim > 0 && y_dim > 0 && options_.latent > 0, ValueError, who, ": x_dim (",
                  x_dim, "), y_dim (", y_dim, ") and latent (", options_.latent,
                  ") must be positive");
  METALEARN_CHECK(!options_.latent_encoder.empty(), ValueError, who,
                  ": the latent encoder needs at least one layer");
  for (const auto* sizes : {&options_.deterministic, &options_.latent_encoder, &options_.decoder}) {
    for (Index n : *sizes) {
      METALEARN_CHECK(n > 0, ValueError, who, ": layer size ", n, " must be positive");
    }
  }
  METALEARN_CHECK(options_.sigma_floor >= 0.0 && options_.sigma_floor < 1.0, ValueError, who,
                  ": sigma_floor ", options_.sigma_floor, " must lie in [0, 1)");
  METALEARN_CHECK(options_.lr > 0.0 && std::isfinite(options_.lr), ValueError, who,
                  ": learning rate ", options_.lr, " must be positive and finite");
  METALEARN_CHECK(options_.likelihood_samples >= 1, ValueError, who, ": likelihood_samples ",
                  options_.likelihood_samples, " must be at least 1");
  METALEARN_CHECK(options_.attention_heads >= 0, ValueError, who, ": attention_heads ",
                  options_.attention_heads, " must be >= 0");
  METALEARN_CHECK(options_.attention_heads == 0 || !options_.deterministic.empty(), ValueError, who,
                  ": attention replaces the deterministic path's mean; give it a "
                  "deterministic path (NpOptions::deterministic) or set attention_heads = 0");
  METALEARN_CHECK(!options_.self_attention || options_.attention_heads > 0, ValueError, who,
                  ": self_attention needs attention_heads > 0");
  METALEARN_CHECK(options_.attention_heads == 0 || !options_.attention_mlp.empty(), ValueError, who,
                  ": the attention MLP needs at least one layer");
  for (Index n : options_.attention_mlp) {
    METALEARN_CHECK(n > 0, ValueError, who, ": attention MLP layer size ", n, " must be positive");
  }
  const Index in = x_dim + y_dim;
  const auto sizes = [&](Index first, const std::vector<Index>& rest) {
    std::vector<Index> out{first};
    out.insert(out.end(), rest.begin(), rest.end());
    return out;
  };
  const Index r_dim = options_.deterministic.empty() ? 0 : options_.deterministic.back();
  if (r_dim > 0)
    deterministic_ = std::make_unique<nn::MLP<T>>(sizes(in, options_.deterministic), gen);
  latent_ = std::make_unique<nn::MLP<T>>(sizes(in, options_.latent_encoder), gen);
  // The reference's latent head: a hidden layer of the mean of s and z's size, then
  // the mean and the scale of z.
  const Index s_dim = options_.latent_encoder.back();
  latent_head_ = std::make_unique<nn::MLP<T>>(
      std::vector<Index>{s_dim, (s_dim + options_.latent) / 2, 2 * options_.latent}, gen);
  std::vector<Index> dec = sizes(r_dim + options_.latent + x_dim, options_.decoder);
  dec.push_back(2 * y_dim);
  decoder_ = std::make_unique<nn::MLP<T>>(dec, gen);
  const Index heads = options_.attention_heads;
  if (heads > 0) {
    attention_mlp_ = std::make_unique<nn::MLP<T>>(sizes(x_dim, options_.attention_mlp), gen);
    const Index key = options_.attention_mlp.back();
    const Index head_dim = std::max<Index>(1, r_dim / heads);
    cross_attention_ =
        std::make_unique<nn::MultiheadAttention<T>>(key, key, r_dim, heads, gen, head_dim, r_dim);
    if (options_.self_attention) {
      self_attention_ = std::make_unique<nn::MultiheadAttention<T>>(r_dim, r_dim, r_dim, heads, gen,
                                                                    head_dim, r_dim);
    }
  }
  if (options_.glorot_init) {
    for (const nn::MLP<T>* m : {deterministic_.get(), latent_.get(), latent_head_.get(),
                                decoder_.get(), attention_mlp_.get()}) {
      if (m != nullptr) detail::glorot_init(*m, gen);
    }
  }
  outer_ = std::make_unique<optim::Adam<T>>(meta_parameters().values(),
                                            optim::AdamOptions{.lr = options_.lr});
}

template <class T>
nn::ParamDict<T> NeuralProcess<T>::meta_parameters() const {
  nn::ParamDict<T> out;
  if (deterministic_)
    detail::insert_prefixed(out, "deterministic.", deterministic_->named_parameters());
  detail::insert_prefixed(out, "latent.", latent_->named_parameters());
  detail::insert_prefixed(out, "latent_head.", latent_head_->named_parameters());
  detail::insert_prefixed(out, "decoder.", decoder_->named_parameters());
  if (attention_mlp_) {
    detail::insert_prefixed(out, "attention_mlp.", attention_mlp_->named_parameters());
    detail::insert_prefixed(out, "cross_attention.", cross_attention_->named_parameters());
  }
  if (self_attention_) {
    detail::insert_prefixed(out, "self_attention.", self_attention_->named_parameters());
  }
  return out;
}

template <class T>
void NeuralProcess<T>::check_set(const Tensor<T>& x, const Tensor<T>& y, const char* what,
                                 const char* function) const {
  METALEARN_CHECK(
      x.defined() && y.defined() && x.dim() == 2 && y.dim() == 2 && x.shape()[1] == x_dim_ &&
          y.shape()[1] == y_dim_ && x.shape()[0] > 0 && x.shape()[0] == y.shape()[0],
      ShapeError, function, ": the ", what, " has inputs ", x.defined() ? x.shape() : Shape{},
      " and targets ", y.defined() ? y.shape() : Shape{}, "; expected [n, ", x_dim_, "] and [n, ",
      y_dim_, "] with n >= 1");
}

template <class T>
typename NeuralProcess<T>::Adapted NeuralProcess<T>::encode(const Tensor<T>& x, const Tensor<T>& y,
                                                            const nn::ParamDict<T>& params,
                                                            bool deterministic) const {
  const Tensor<T> xy = concat<T>({x, y}, 1);
  Adapted c;
  if (deterministic && deterministic_) {
    Tensor<T> r = deterministic_->forward(xy, detail::unprefixed(params, "deterministic."));
    if (cross_attention_) {
      if (self_attention_)
        r = self_attention_->forward(r, detail::unprefixed(params, "self_attention."));
      c.keys = attention_mlp_->forward(x, detail::unprefixed(params, "attention_mlp."));
      c.values = r;
    } else {
      c.r = mean(r, 0, true);
    }
  }
  const Tensor<T> s = mean(latent_->forward(xy, detail::unprefixed(params, "latent.")), 0, true);
  const Tensor<T> head = latent_head_->forward(s, detail::unprefixed(params, "latent_head."));
  const Index d = options_.latent;
  c.z_mean = slice(head, 1, 0, d);
  c.z_sigma = add_scalar(mul_scalar(sigmoid(slice(head, 1, d, 2 * d)), T(0.9)), T(0.1));
  return c;
}

template <class T>
GaussianPrediction<T> NeuralProcess<T>::decode(const Adapted& c, const Tensor<T>& z,
                                               const Tensor<T>& x,
                                               const nn::ParamDict<T>& params) const {
  const Index m = x.shape()[0];
  std::vector<Tensor<T>> parts;
  if (c.r.defined()) parts.push_back(expand(c.r, Shape{m, c.r.shape()[1]}));
  if (c.values.defined()) {
    const Tensor<T> queries =
        attention_mlp_->forward(x, detail::unprefixed(params, "attention_mlp."));
    parts.push_back(cross_attention_->attend(queries, c.keys, c.values,
                                             detail::unprefixed(params, "cross_attention.")));
  }
  parts.push_back(expand(z, Shape{m, z.shape()[1]}));
  parts.push_back(x);
  const Tensor<T> out =
      decoder_->forward(concat<T>(parts, 1), detail::unprefixed(params, "decoder."));
  return detail::gaussian_head(out, y_dim_, options_.sigma_floor);
}

template <class T>
Tensor<T> NeuralProcess<T>::loss(const data::Task<T>& task, const nn::ParamDict<T>& params,
                                 const Tensor<T>& eps) const {
  const char* function = "NeuralProcess::loss";
  check_set(task.support_x, task.support_y, "context (support set)", function);
  check_set(task.query_x, task.query_y, "target set (query set)", function);
  METALEARN_CHECK(eps.defined() && eps.shape() == (Shape{1, options_.latent}), ShapeError, function,
                  ": noise of shape ", eps.defined() ? eps.shape() : Shape{}, "; expected [1, ",
                  options_.latent, "]");
  const Adapted prior = encode(task.support_x, task.support_y, params);
  const Adapted posterior = encode(task.query_x, task.query_y, params, /*deterministic=*/false);
  // z from the posterior, reparameterised; the deterministic path reads the context.
  const Tensor<T> z = add(posterior.z_mean, mul(posterior.z_sigma, eps));
  const GaussianPrediction<T> p = decode(prior, z, task.query_x, params);
  const T m = static_cast<T>(task.query_x.shape()[0]);
  const Tensor<T> log_p = sum(detail::gaussian_log_density(task.query_y, p.mean, p.stddev));
  // KL(N(mq, sq^2) || N(mp, sp^2)) = log(sp / sq) + (sq^2 + (mq - mp)^2) / (2 sp^2) - 1/2.
  const Tensor<T> kl = sum(add_scalar(
      add(sub(log(prior.z_sigma), log(posterior.z_sigma)),
          div(add(square(posterior.z_sigma), square(sub(posterior.z_mean, prior.z_mean))),
              mul_scalar(square(prior.z_sigma), T(2)))),
      T(-0.5)));
  return mul_scalar(sub(kl, log_p), T(1) / m);
}

template <class T>
double NeuralProcess<T>::log_likelihood(const data::Task<T>& task, int samples,
                                        Generator& gen) const {
  const char* function = "NeuralProcess::log_likelihood";
  check_set(task.support_x, task.support_y, "context (support set)", function);
  check_set(task.query_x, task.query_y, "target set (query set)", function);
  METALEARN_CHECK(samples >= 1, ValueError, function, ": ", samples, " samples (need >= 1)");
  autograd::NoGradGuard no_grad;
  const nn::ParamDict<T> params = meta_parameters();
  const Adapted prior = encode(task.support_x, task.support_y, params);
  std::vector<double> per_sample;
  for (int k = 0; k < samples; ++k) {
    const Tensor<T> eps = randn<T>(Shape{1, options_.latent}, gen);
    const Tensor<T> z = add(prior.z_mean, mul(prior.z_sigma, eps));
    const GaussianPrediction<T> p = decode(prior, z, task.query_x, params);
    per_sample.push_back(static_cast<double>(
        sum(detail::gaussian_log_density(task.query_y, p.mean, p.stddev)).item()));
  }
  // log mean exp, in double.
  double top = per_sample.front();
  for (double v : per_sample) top = std::max(top, v);
  double acc = 0.0;
  for (double v : per_sample) acc += std::exp(v - top);
  const double log_mean = top + std::log(acc / static_cast<double>(samples));
  return log_mean / static_cast<double>(task.query_x.shape()[0]);
}

template <class T>
MetaGradient<T> NeuralProcess<T>::meta_gradient(const data::TaskBatch<T>& batch) const {
  METALEARN_CHECK(!batch.empty(), ValueError, "NeuralProcess::meta_gradient: empty task batch");
  const nn::ParamDict<T> named = meta_parameters();
  return detail::sum_task_gradients(pool_, batch, named, [&](std::size_t i) {
    Generator gen(
        derive_seed({options_.seed, detail::kNpTrainTag, static_cast<std::uint64_t>(steps_taken_),
                     detail::task_fingerprint(batch[i])}));
    return TaskLoss<T>{loss(batch[i], named, randn<T>(Shape{1, options_.latent}, gen))};
  });
}

template <class T>
void NeuralProcess<T>::apply_checked(const MetaGradient<T>& gradient,
                                     const detail::FiniteStepGuard<T>& finite, const char* caller) {
  const std::string function =
      std::string(caller) + " (meta-step " + std::to_string(steps_taken_) + ")";
  detail::descend(*outer_, gradient, finite, function);
  ++steps_taken_;
}

template <class T>
void NeuralProcess<T>::apply(const MetaGradient<T>& gradient) {
  const nn::ParamDict<T> named = meta_parameters();
  detail::check_meta_gradient(gradient, named, "NeuralProcess::apply");
  const detail::FiniteStepGuard<T> finite(options_.check_finite, named, outer_.get());
  apply_checked(gradient, finite, "NeuralProcess::apply");
}

template <class T>
StepStats NeuralProcess<T>::meta_step(const data::TaskBatch<T>& batch) {
  const detail::FiniteStepGuard<T> finite(options_.check_finite, meta_parameters(), outer_.get());
  const MetaGradient<T> gradient = meta_gradient(batch);
  apply_checked(gradient, finite, "NeuralProcess::meta_step");
  return gradient.stats;
}

template <class T>
typename NeuralProcess<T>::Adapted NeuralProcess<T>::adapt(const data::Task<T>& task) const {
  check_set(task.support_x, task.support_y, "context (support set)", "NeuralProcess::adapt");
  autograd::NoGradGuard no_grad;
  return encode(task.support_x, task.support_y, meta_parameters());
}

template <class T>
GaussianPrediction<T> NeuralProcess<T>::predictive(const Adapted& adapted, const Tensor<T>& z,
                                                   const Tensor<T>& x) const {
  const char* function = "NeuralProcess::predictive";
  METALEARN_CHECK(adapted.z_mean.defined() && z.defined() && z.shape() == adapted.z_mean.shape(),
                  ShapeError, function, ": z of shape ", z.defined() ? z.shape() : Shape{},
                  "; expected [1, ", options_.latent, "] and a context from adapt()");
  METALEARN_CHECK(x.defined() && x.dim() == 2 && x.shape()[1] == x_dim_, ShapeError, function,
                  ": inputs of shape ", x.defined() ? x.shape() : Shape{}, "; expected [m, ",
                  x_dim_, "]");
  autograd::NoGradGuard no_grad;
  return decode(adapted, z, x, meta_parameters());
}

template <class T>
Tensor<T> NeuralProcess<T>::predict(const Adapted& adapted, const Tensor<T>& x) const {
  const GaussianPrediction<T> p = predictive(adapted, adapted.z_mean, x);
  return concat<T>({p.mean, p.stddev}, 1);
}

template <class T>
EvalResult NeuralProcess<T>::evaluate(const data::AnyTaskSampler<T>& sampler,
                                      std::size_t episodes) const {
  std::vector<double> values(episodes);
  pool_.run(episodes, [&](std::size_t i) {
    Generator gen = episode_generator(options_.seed, i);
    const data::Task<T> task = sampler.sample(gen);
    Generator noise(
        derive_seed({options_.seed, detail::kNpEvalTag, static_cast<std::uint64_t>(i)}));
    values[i] = log_likelihood(task, options_.likelihood_samples, noise);
  });
  return EvalResult::from_values(std::move(values));
}

template <class T>
LearnerState<T> NeuralProcess<T>::state() const {
  return detail::make_state(meta_parameters(), nn::ParamDict<T>(), std::optional(outer_->state()),
                            steps_taken_);
}

template <class T>
void NeuralProcess<T>::load_state(const LearnerState<T>& state) {
  const char* function = "NeuralProcess::load_state";
  detail::check_state(state, function, /*optimizer=*/true, /*inner=*/false, /*buffers=*/false);
  const detail::StateLoad<T> load(meta_parameters(), nn::ParamDict<T>(), state, function);
  outer_->load_state(*state.optimizer);
  load.commit();
  steps_taken_ = state.steps;
}

static_assert(MetaLearner<NeuralProcess<float>> && MetaLearner<NeuralProcess<double>>);

}  // namespace metalearn::algorithms
