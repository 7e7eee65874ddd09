#pragma once
// Definitions of ProtoNet and PrototypeClassifier (included at the end of protonet.hpp).
// SPDX-License-Identifier: MIT

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "metalearn/algorithms/protonet/protonet.hpp"
#include "metalearn/autograd/grad.hpp"
#include "metalearn/tensor/factory.hpp"
#include "metalearn/tensor/ops.hpp"

namespace metalearn::algorithms {

template <class T>
Tensor<T> class_prototypes(const Tensor<T>& embeddings, const Labels& labels, Index ways) {
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
Tensor<T> prototype_loss(const Tensor<T>& support_embeddings, const Labels& support_labels,
                         const Tensor<T>& query_embeddings, const Labels& query_labels, Index ways,
                         Distance distance, T scale) {
  const Tensor<T> protos = class_prototypes(support_embeddings, support_labels, ways);
  return cross_entropy(prototype_logits(query_embeddings, protos, distance, scale), query_labels);
}

// ---- PrototypeClassifier --------------------------------------------------------

template <class T>
PrototypeClassifier<T>::PrototypeClassifier(const nn::Module<T>& embedding,
                                            const Tensor<T>& support_x,
                                            const Labels& support_labels, Distance distance,
                                            T scale)
    : embedding_(embedding.clone()), distance_(distance), scale_(scale) {
  embedding_->eval();
  const Index ways = detail::count_ways(support_labels, "PrototypeClassifier");
  autograd::NoGradGuard no_grad;
  prototypes_ = class_prototypes(embedding_->forward(support_x), support_labels, ways).detach();
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
Labels PrototypeClassifier<T>::classify(const Tensor<T>& x) const {
  return argmax(logits(x), 1);
}

// ---- ProtoNet ---------------------------------------------------------------------

template <class T>
ProtoNet<T>::ProtoNet(nn::Module<T>& embedding, ProtoNetOptions<T> options)
    : options_(std::move(options)), trainer_(nullptr, &embedding, options_, "ProtoNet") {}

template <class T>
ProtoNet<T>::ProtoNet(Generator& gen, ProtoNetOptions<T> options)
    : options_(std::move(options)),
      trainer_(std::make_shared<nn::ConvNet4<T>>(options_.embedding, gen), nullptr, options_,
               "ProtoNet") {}

template <class T>
LearnerState<T> ProtoNet<T>::state() const {
  return trainer_.state();
}

template <class T>
void ProtoNet<T>::load_state(const LearnerState<T>& state) {
  trainer_.load_state(state);
}

template <class T>
Tensor<T> ProtoNet<T>::embed(const Tensor<T>& x) const {
  Tensor<T> e = trainer_.model().forward(x);
  METALEARN_CHECK(e.dim() == 2, ShapeError, "ProtoNet::embed: the embedding network returned ",
                  e.shape(), "; expected [N, D]");
  return e;
}

template <class T>
TaskLoss<T> ProtoNet<T>::episode_loss(const data::Task<T>& task) const {
  const Labels& s_labels = task.support_labels;
  const Labels& q_labels = task.query_labels;
  const Index ways = task.ways > 0 ? task.ways : detail::count_ways(s_labels, "ProtoNet::loss");
  const Index ns = task.support_x.shape()[0];
  const Index nq = task.query_x.shape()[0];
  METALEARN_CHECK(nq > 0, ValueError, "ProtoNet::loss: the episode has no query examples");
  const Tensor<T> e = embed(concat<T>({task.support_x, task.query_x}, 0));
  const Tensor<T> protos = class_prototypes(slice(e, 0, 0, ns), s_labels, ways);
  const Tensor<T> logits =
      prototype_logits(slice(e, 0, ns, ns + nq), protos, options_.distance, options_.scale);
  return {cross_entropy(logits, q_labels), metalearn::accuracy(logits, q_labels)};
}

template <class T>
MetaGradient<T> ProtoNet<T>::meta_gradient(const data::TaskBatch<T>& batch) const {
  return trainer_.meta_gradient(batch,
                                [&](const data::Task<T>& task) { return episode_loss(task); });
}

template <class T>
void ProtoNet<T>::apply(const MetaGradient<T>& gradient) {
  trainer_.apply(gradient);
}

template <class T>
StepStats ProtoNet<T>::meta_step(const data::TaskBatch<T>& batch) {
  return trainer_.meta_step(batch, [&](const data::Task<T>& task) { return episode_loss(task); });
}

template <class T>
typename ProtoNet<T>::Adapted ProtoNet<T>::adapt(const data::Task<T>& task) const {
  return classifier(task.support_x, task.support_labels);
}

template <class T>
Tensor<T> ProtoNet<T>::predict(const Adapted& adapted, const Tensor<T>& x) const {
  return adapted.log_probs(x);
}

template <class T>
Tensor<T> ProtoNet<T>::predict(const Tensor<T>& support_x, const Labels& support_labels,
                               const Tensor<T>& query_x) const {
  autograd::NoGradGuard no_grad;
  const Labels& labels = support_labels;
  const Index ways = detail::count_ways(labels, "ProtoNet::predict");
  const Index ns = support_x.shape()[0];
  const Tensor<T> e = embed(concat<T>({support_x, query_x}, 0));
  const Tensor<T> protos = class_prototypes(slice(e, 0, 0, ns), labels, ways);
  const Tensor<T> logits =
      prototype_logits(slice(e, 0, ns, e.shape()[0]), protos, options_.distance, options_.scale);
  return log_softmax(logits, 1);
}

template <class T>
PrototypeClassifier<T> ProtoNet<T>::classifier(const Tensor<T>& support_x,
                                               const Labels& support_labels) const {
  return PrototypeClassifier<T>(trainer_.model(), support_x, support_labels, options_.distance,
                                options_.scale);
}

template <class T>
EvalResult ProtoNet<T>::evaluate(const data::AnyTaskSampler<T>& sampler,
                                 std::size_t episodes) const {
  return trainer_.evaluate(sampler, episodes, options_.seed, [&](const data::Task<T>& task) {
    return accuracy(predict(task.support_x, task.support_labels, task.query_x), task.query_labels);
  });
}

static_assert(MetaLearner<ProtoNet<float>> && MetaLearner<ProtoNet<double>>);

}  // namespace metalearn::algorithms
