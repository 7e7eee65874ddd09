#pragma once
// Definitions of ProtoNet and PrototypeClassifier (included at the end of protonet.hpp).
// SPDX-License-Identifier: MIT

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "metalearn/algorithms/protonet.hpp"
#include "metalearn/autograd/grad.hpp"
#include "metalearn/tensor/factory.hpp"
#include "metalearn/tensor/ops.hpp"

namespace metalearn::algorithms {

namespace detail {

/// Number of classes of integral labels 0..ways-1 (the largest label plus one).
inline Index count_ways(const std::vector<Index>& labels, const char* function) {
  METALEARN_CHECK(!labels.empty(), ValueError, function, ": empty support set");
  return *std::max_element(labels.begin(), labels.end()) + 1;
}

/// Switches a module to training mode for a scope and back to evaluation mode.
template <class T>
class TrainingScope {
 public:
  explicit TrainingScope(nn::Module<T>& m) : m_(m) { m_.train(); }
  ~TrainingScope() { m_.eval(); }
  TrainingScope(const TrainingScope&) = delete;
  TrainingScope& operator=(const TrainingScope&) = delete;

 private:
  nn::Module<T>& m_;
};

}  // namespace detail

template <class T>
Tensor<T> class_prototypes(const Tensor<T>& embeddings, const std::vector<Index>& labels,
                           Index ways) {
  METALEARN_CHECK(embeddings.dim() == 2, ShapeError,
                  "class_prototypes: expected embeddings [N, D], got ", embeddings.shape());
  const Index n = embeddings.shape()[0];
  METALEARN_CHECK(static_cast<Index>(labels.size()) == n, ShapeError,
                  "class_prototypes: ", labels.size(), " labels for embeddings of shape ",
                  embeddings.shape());
  METALEARN_CHECK(ways >= 1, ValueError, "class_prototypes: ways must be >= 1, got ", ways);
  std::vector<Index> count(static_cast<std::size_t>(ways), 0);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    METALEARN_CHECK(labels[i] >= 0 && labels[i] < ways, ValueError, "class_prototypes: label ",
                    labels[i], " at position ", i, " is outside [0, ", ways, ")");
    ++count[static_cast<std::size_t>(labels[i])];
  }
  for (Index k = 0; k < ways; ++k) {
    METALEARN_CHECK(count[static_cast<std::size_t>(k)] > 0, ValueError, "class_prototypes: class ",
                    k, " of ", ways, " has no support example");
  }
  // Averaging matrix A [ways, N] with A[k, i] = 1 / n_k when label i is k: the
  // prototypes are one GEMM, A * embeddings, and the gradient flows through it.
  std::vector<T> a(static_cast<std::size_t>(ways * n), T(0));
  for (Index i = 0; i < n; ++i) {
    const Index k = labels[static_cast<std::size_t>(i)];
    a[static_cast<std::size_t>(k * n + i)] =
        T(1) / static_cast<T>(count[static_cast<std::size_t>(k)]);
  }
  return mm(from_vector<T>(a, {ways, n}), embeddings, false, false);
}

template <class T>
Tensor<T> prototype_logits(const Tensor<T>& query, const Tensor<T>& prototypes, Distance distance,
                           T scale) {
  return similarity_logits(query, prototypes, distance, scale);
}

template <class T>
Tensor<T> prototype_loss(const Tensor<T>& support_embeddings,
                         const std::vector<Index>& support_labels,
                         const Tensor<T>& query_embeddings, const std::vector<Index>& query_labels,
                         Index ways, Distance distance, T scale) {
  const Tensor<T> protos = class_prototypes(support_embeddings, support_labels, ways);
  return cross_entropy(prototype_logits(query_embeddings, protos, distance, scale), query_labels);
}

// ---- PrototypeClassifier --------------------------------------------------------

template <class T>
PrototypeClassifier<T>::PrototypeClassifier(const nn::Module<T>& embedding,
                                            const Tensor<T>& support_x, const Tensor<T>& support_y,
                                            Distance distance, T scale)
    : embedding_(embedding.clone()), distance_(distance), scale_(scale) {
  embedding_->eval();
  const std::vector<Index> labels = to_labels(support_y);
  const Index ways = detail::count_ways(labels, "PrototypeClassifier");
  autograd::NoGradGuard no_grad;
  prototypes_ = class_prototypes(embedding_->forward(support_x), labels, ways).detach();
}

template <class T>
Tensor<T> PrototypeClassifier<T>::logits(const Tensor<T>& x) const {
  autograd::NoGradGuard no_grad;
  return prototype_logits(embedding_->forward(x), prototypes_, distance_, scale_);
}

template <class T>
Tensor<T> PrototypeClassifier<T>::log_probs(const Tensor<T>& x) const {
  autograd::NoGradGuard no_grad;
  return log_softmax(logits(x), 1);
}

template <class T>
std::vector<Index> PrototypeClassifier<T>::classify(const Tensor<T>& x) const {
  return argmax(logits(x), 1);
}

// ---- ProtoNet ---------------------------------------------------------------------

template <class T>
ProtoNet<T>::ProtoNet(nn::Module<T>& embedding, ProtoNetOptions<T> options)
    : model_(&embedding),
      options_(std::move(options)),
      pool_(thread_count(options_.threads(), "ProtoNet")) {
  init();
}

template <class T>
ProtoNet<T>::ProtoNet(Generator& gen, ProtoNetOptions<T> options)
    : owned_(std::make_shared<nn::ConvNet4<T>>(options.embedding(), gen)),
      model_(owned_.get()),
      options_(std::move(options)),
      pool_(thread_count(options_.threads(), "ProtoNet")) {
  init();
}

template <class T>
void ProtoNet<T>::init() {
  METALEARN_CHECK(options_.lr() > 0.0, ValueError, "ProtoNet: learning rate must be positive, got ",
                  options_.lr());
  METALEARN_CHECK(
      options_.lr_decay() > 0.0 && options_.lr_decay() <= 1.0 && options_.lr_decay_every() >= 0,
      ValueError, "ProtoNet: lr_decay factor ", options_.lr_decay(),
      " must be in (0, 1] and its period ", options_.lr_decay_every(), " non-negative");
  METALEARN_CHECK(options_.scale() > T(0), ValueError, "ProtoNet: scale must be positive, got ",
                  options_.scale());
  outer_ = std::make_unique<optim::Adam<T>>(model_->parameters(),
                                            optim::AdamOptions{}.lr(options_.lr()));
  model_->eval();
}

template <class T>
LearnerState<T> ProtoNet<T>::state() const {
  return detail::make_state(model_->named_parameters(), model_->named_buffers(),
                            std::optional(outer_->state()), steps_taken_);
}

template <class T>
void ProtoNet<T>::load_state(const LearnerState<T>& state) {
  const char* function = "ProtoNet::load_state";
  detail::check_state(state, function, /*optimizer=*/true, /*inner=*/false, /*buffers=*/true);
  const detail::StateLoad<T> load(model_->named_parameters(), model_->named_buffers(), state,
                                  function);
  outer_->load_state(*state.optimizer);  // checks everything before it changes anything
  load.commit();
  steps_taken_ = state.steps;
}

template <class T>
Tensor<T> ProtoNet<T>::embed(const Tensor<T>& x) const {
  Tensor<T> e = model_->forward(x);
  METALEARN_CHECK(e.dim() == 2, ShapeError, "ProtoNet::embed: the embedding network returned ",
                  e.shape(), "; expected [N, D]");
  return e;
}

template <class T>
Tensor<T> ProtoNet<T>::loss(const data::Task<T>& task, double* accuracy) const {
  const std::vector<Index> s_labels = to_labels(task.support_y);
  const std::vector<Index> q_labels = to_labels(task.query_y);
  const Index ways = task.ways > 0 ? task.ways : detail::count_ways(s_labels, "ProtoNet::loss");
  const Index ns = task.support_x.shape()[0];
  const Index nq = task.query_x.shape()[0];
  METALEARN_CHECK(nq > 0, ValueError, "ProtoNet::loss: the episode has no query examples");
  const Tensor<T> e = embed(concat<T>({task.support_x, task.query_x}, 0));
  const Tensor<T> protos = class_prototypes(slice(e, 0, 0, ns), s_labels, ways);
  const Tensor<T> logits =
      prototype_logits(slice(e, 0, ns, ns + nq), protos, options_.distance(), options_.scale());
  if (accuracy != nullptr) *accuracy = metalearn::accuracy(logits, q_labels);
  return cross_entropy(logits, q_labels);
}

template <class T>
MetaGradient<T> ProtoNet<T>::meta_gradient(const data::TaskBatch<T>& batch) const {
  METALEARN_CHECK(!batch.empty(), ValueError, "ProtoNet::meta_gradient: empty task batch");
  const detail::TrainingScope<T> training(*model_);
  // One episode (the paper's setting) has its convolutions split over the pool.
  return detail::sum_task_gradients(
      pool_, batch, model_->named_parameters(),
      [&](std::size_t i, double* accuracy) { return loss(batch[i], accuracy); });
}

template <class T>
void ProtoNet<T>::apply_checked(const MetaGradient<T>& gradient,
                                const detail::FiniteStepGuard<T>& finite, const char* caller) {
  const std::string function =
      std::string(caller) + " (meta-step " + std::to_string(steps_taken_) + ")";
  detail::descend(*outer_, gradient, finite, function);
  ++steps_taken_;
  if (options_.lr_decay_every() > 0 && steps_taken_ % options_.lr_decay_every() == 0) {
    outer_->set_lr(outer_->lr() * options_.lr_decay());
  }
}

template <class T>
void ProtoNet<T>::apply(const MetaGradient<T>& gradient) {
  const nn::ParamDict<T> named = model_->named_parameters();
  detail::check_meta_gradient(gradient, named, "ProtoNet::apply");
  const detail::FiniteStepGuard<T> finite(options_.check_finite(), named, outer_.get());
  apply_checked(gradient, finite, "ProtoNet::apply");
}

template <class T>
StepStats ProtoNet<T>::meta_step(const data::TaskBatch<T>& batch) {
  const detail::FiniteStepGuard<T> finite(options_.check_finite(), model_->named_parameters(),
                                          outer_.get(), model_->named_buffers());
  const MetaGradient<T> gradient =
      detail::gradient_or_restore(finite, [&] { return meta_gradient(batch); });
  apply_checked(gradient, finite, "ProtoNet::meta_step");
  return gradient.stats;
}

template <class T>
typename ProtoNet<T>::Adapted ProtoNet<T>::adapt(const data::Task<T>& task) const {
  return classifier(task.support_x, task.support_y);
}

template <class T>
Tensor<T> ProtoNet<T>::predict(const Adapted& adapted, const Tensor<T>& x) const {
  return adapted.log_probs(x);
}

template <class T>
Tensor<T> ProtoNet<T>::predict(const Tensor<T>& support_x, const Tensor<T>& support_y,
                               const Tensor<T>& query_x) const {
  autograd::NoGradGuard no_grad;
  const std::vector<Index> labels = to_labels(support_y);
  const Index ways = detail::count_ways(labels, "ProtoNet::predict");
  const Index ns = support_x.shape()[0];
  const Tensor<T> e = embed(concat<T>({support_x, query_x}, 0));
  const Tensor<T> protos = class_prototypes(slice(e, 0, 0, ns), labels, ways);
  const Tensor<T> logits = prototype_logits(slice(e, 0, ns, e.shape()[0]), protos,
                                            options_.distance(), options_.scale());
  return log_softmax(logits, 1);
}

template <class T>
PrototypeClassifier<T> ProtoNet<T>::classifier(const Tensor<T>& support_x,
                                               const Tensor<T>& support_y) const {
  return PrototypeClassifier<T>(*model_, support_x, support_y, options_.distance(),
                                options_.scale());
}

template <class T>
EvalResult ProtoNet<T>::evaluate(const data::AnyTaskSampler<T>& sampler,
                                 std::size_t episodes) const {
  std::vector<double> values(episodes);
  pool_.run(episodes, [&](std::size_t i) {
    Generator gen = episode_generator(options_.seed(), i);
    const data::Task<T> task = sampler.sample(gen);
    const Tensor<T> logp = predict(task.support_x, task.support_y, task.query_x);
    values[i] = accuracy(logp, to_labels(task.query_y));
  });
  return EvalResult::from_values(std::move(values));
}

static_assert(MetaLearner<ProtoNet<float>> && MetaLearner<ProtoNet<double>>);

}  // namespace metalearn::algorithms
