#pragma once
/// @file
/// Matching Networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, NeurIPS
/// 2016): a query's label distribution is the attention-weighted sum of the support
/// labels (see attention.hpp), with the attention a softmax over the supports of the
/// cosine between embeddings, trained end to end by the query cross-entropy of
/// N-way K-shot episodes. Adapting to a new task is a forward pass over its support
/// set, so a MatchingClassifier built once classifies any number of queries. With
/// full context embeddings (full_context.hpp) the supports are read together by a
/// bidirectional LSTM and each query attends over them for K steps.
// SPDX-License-Identifier: MIT

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "metalearn/algorithms/common.hpp"
#include "metalearn/algorithms/episodic.hpp"
#include "metalearn/algorithms/matching/attention.hpp"
#include "metalearn/algorithms/matching/full_context.hpp"
#include "metalearn/algorithms/meta_learner.hpp"
#include "metalearn/autograd/grad_mode.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/data/task_sampler.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/nn/modules/convnet.hpp"
#include "metalearn/tensor/ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::algorithms {

/// Options of MatchingNet: the cosine attention of the paper, Adam 1e-3 halved every
/// 2000 episodes, the 4-block 64-channel ConvNet with running batch-norm statistics,
/// no full context embeddings:
/// `MatchingNetOptions<float>{.scale = 10.f, .threads = 2, .full_context_dim = 64}`.
/// The fields up to `seed` are those of every metric learner (as in ProtoNetOptions).
template <class T = float>
struct MatchingNetOptions {
  /// Distance between query and support embeddings.
  Distance distance = Distance::kCosine;
  /// Logits are -scale * distance (a temperature; useful with the cosine distance,
  /// whose range is [0, 2]).
  T scale = T(1);
  /// Adam learning rate.
  double lr = 1e-3;
  /// Multiply the learning rate by `lr_decay` every `lr_decay_every` meta-steps
  /// (lr_decay_every = 0: never).
  double lr_decay = 0.5;
  std::int64_t lr_decay_every = 2000;
  /// The ConvNet4 that the learner builds when it is not given an embedding (no head;
  /// batch norm with running statistics, as in the papers' code).
  nn::ConvNet4Options embedding{.batch_norm = {.mode = nn::BatchNormMode::kRunning}};
  /// Threads running the episodes of a meta-batch and evaluation episodes; a
  /// meta-batch of one episode, or an episode left over after the last whole round,
  /// spreads its convolutions over them (IntraOpScope).
  int threads = 1;
  /// Check every meta-step for NaN or infinite values (on by default): when the
  /// meta-gradient or the updated parameters are not finite, meta_step() throws
  /// NonFiniteError naming the first such tensor and leaves the parameters and the
  /// optimizer state as they were before the step.
  bool check_finite = true;
  /// Seed of evaluation episodes.
  std::uint64_t seed = 0;
  /// Full context embeddings (FullContextEmbedding) over embeddings of width
  /// `full_context_dim` (64 for ConvNet4 on 28 x 28 images) with `full_context_steps`
  /// attention steps; full_context_dim = 0 turns them off. Their parameters are
  /// trained with the embedding's (names prefixed with "context.").
  Index full_context_dim = 0;
  int full_context_steps = 5;
};

/// A classifier fixed by one support set: an independent copy of the embedding
/// network (in evaluation mode), the support embeddings and their labels. Built
/// once, it classifies any number of queries from any number of threads; later
/// training of the MatchingNet does not change it.
template <class T = float>
class MatchingClassifier {
 public:
  /// Embeds the support set with a copy of `embedding`.
  /// @throws ShapeError / ValueError as matching_log_probs (a label outside
  /// 0..ways-1, a class without examples, mismatched sizes).
  /// `context` (optional) adds full context embeddings: the supports are encoded
  /// together here and every query attends over them.
  MatchingClassifier(const nn::Module<T>& embedding, const Tensor<T>& support_x,
                     Labels support_labels, Distance distance = Distance::kCosine, T scale = T(1),
                     const FullContextEmbedding<T>* context = nullptr)
      : embedding_(embedding.clone()),
        context_(context != nullptr ? context->deep_copy() : nullptr),
        labels_(std::move(support_labels)),
        ways_(detail::count_ways(labels_, "MatchingClassifier")),
        distance_(distance),
        scale_(scale) {
    embedding_->eval();
    autograd::NoGradGuard no_grad;
    support_ = embedding_->forward(support_x).detach();
    if (context_ != nullptr) {
      context_->eval();
      support_ = context_->encode_support(support_);
    }
    // Checks the labels and shapes once, here, rather than at the first query.
    (void)matching_log_probs(support_, support_, labels_, ways_, distance_, scale_);
  }

  /// A classifier from its parts, as train::load_matching_classifier() reads them:
  /// `embedding` and `context` (may be null) are used as given (put in evaluation
  /// mode), `support` [S, D] are the (encoded) support embeddings.
  /// @throws ShapeError / ValueError as matching_log_probs, and when the context's
  /// width differs from the supports'.
  MatchingClassifier(std::shared_ptr<nn::Module<T>> embedding,
                     std::shared_ptr<FullContextEmbedding<T>> context, Tensor<T> support,
                     Labels labels, Distance distance, T scale)
      : embedding_(std::move(embedding)),
        context_(std::move(context)),
        support_(std::move(support)),
        labels_(std::move(labels)),
        ways_(detail::count_ways(labels_, "MatchingClassifier")),
        distance_(distance),
        scale_(scale) {
    METALEARN_CHECK(embedding_ != nullptr, ValueError, "MatchingClassifier: no embedding network");
    METALEARN_CHECK(scale_ > T(0), ValueError, "MatchingClassifier: scale must be positive, got ",
                    scale_);
    embedding_->eval();
    if (context_ != nullptr) {
      context_->eval();
      METALEARN_CHECK(support_.dim() == 2 && support_.shape()[1] == context_->dim(), ShapeError,
                      "MatchingClassifier: support embeddings ", support_.shape(),
                      " do not fit full context embeddings of width ", context_->dim());
    }
    (void)matching_log_probs(support_, support_, labels_, ways_, distance_, scale_);
  }

  /// log p(y = k | x), [N, ways].
  [[nodiscard]] Tensor<T> log_probs(const Tensor<T>& x) const {
    autograd::NoGradGuard no_grad;
    Tensor<T> query = embedding_->forward(x);
    if (context_ != nullptr) query = context_->encode_query(query, support_);
    return matching_log_probs(query, support_, labels_, ways_, distance_, scale_);
  }
  /// The most probable label of every row of `x`.
  [[nodiscard]] Labels classify(const Tensor<T>& x) const { return argmax(log_probs(x), 1); }

  /// The support embeddings [S, D] (with full context embeddings, encoded) and their labels.
  [[nodiscard]] const Tensor<T>& support_embeddings() const { return support_; }
  [[nodiscard]] const Labels& labels() const { return labels_; }
  [[nodiscard]] Index ways() const { return ways_; }
  [[nodiscard]] Distance distance() const { return distance_; }
  [[nodiscard]] T scale() const { return scale_; }
  /// The classifier's own copy of the embedding network.
  [[nodiscard]] const nn::Module<T>& embedding() const { return *embedding_; }
  /// Its full context embeddings (nullptr without).
  [[nodiscard]] const FullContextEmbedding<T>* context() const { return context_.get(); }

 private:
  std::shared_ptr<nn::Module<T>> embedding_;
  std::shared_ptr<FullContextEmbedding<T>> context_;
  Tensor<T> support_;
  Labels labels_;
  Index ways_;
  Distance distance_;
  T scale_;
};

/// Matching Networks over any embedding nn::Module (outputs [N, D]), the same
/// network embedding the supports and the queries.
///
/// As ProtoNet: the module is in training mode only inside meta_step(); an episode's
/// supports and queries are embedded in one batch; the episodes of a meta-batch run
/// on a thread pool and their gradients are reduced in task order, so parameters
/// equal the serial run bit for bit.
///
/// @code
/// Generator gen(0);
/// algorithms::MatchingNet<float> matching(gen);        // ConvNet4 embedding
/// data::EpisodicSampler<float> train(glyphs, {.ways = 5, .shots = 1, .queries = 15});
/// for (int s = 0; s < 5000; ++s) matching.meta_step({train.sample(gen)});
/// auto acc = matching.evaluate(test_episodes, 600);    // mean +- 95% CI
/// @endcode
template <class T = float>
class MatchingNet {
 public:
  using value_type = T;
  /// What adapt() returns: a classifier fixed by the task's support set.
  using Adapted = MatchingClassifier<T>;

  /// Uses `embedding` (which must outlive the MatchingNet); its parameters are trained.
  /// Full context embeddings, when set in the options, are initialised from
  /// Generator(options.seed).
  MatchingNet(nn::Module<T>& embedding, MatchingNetOptions<T> options = {})
      : options_(std::move(options)),
        trainer_(nullptr, &embedding, options_, "MatchingNet", make_context(options_, nullptr)) {}
  /// Builds and owns a ConvNet4 embedding from options.embedding, then the full
  /// context embeddings when set, initialised by `gen` in that order.
  explicit MatchingNet(Generator& gen, const MatchingNetOptions<T>& options = {})
      : MatchingNet(std::make_shared<nn::ConvNet4<T>>(options.embedding, gen), gen, options) {}

  /// Embeddings [N, D] of inputs `x` (with the module's current mode).
  [[nodiscard]] Tensor<T> embed(const Tensor<T>& x) const {
    Tensor<T> e = trainer_.model().forward(x);
    METALEARN_CHECK(e.dim() == 2, ShapeError, "MatchingNet::embed: the embedding network returned ",
                    e.shape(), "; expected [N, D]");
    return e;
  }

  /// log p(y | x) [Q, ways] of `query_x` given a labelled support set (labels
  /// 0..ways-1), differentiable; supports and queries are embedded in one batch.
  [[nodiscard]] Tensor<T> log_probs(const Tensor<T>& support_x, const Labels& labels,
                                    const Tensor<T>& query_x, Index ways = 0) const {
    if (ways <= 0) ways = detail::count_ways(labels, "MatchingNet");
    const Index ns = support_x.shape()[0];
    const Tensor<T> e = embed(concat<T>({support_x, query_x}, 0));
    Tensor<T> support = slice(e, 0, 0, ns);
    Tensor<T> query = slice(e, 0, ns, e.shape()[0]);
    if (const auto* context = full_context(); context != nullptr) {
      check_context_width(support);
      support = context->encode_support(support);
      query = context->encode_query(query, support);
    }
    return matching_log_probs(query, support, labels, ways, options_.distance, options_.scale);
  }

  /// The differentiable query loss (cross-entropy) of one episode and its query
  /// accuracy.
  [[nodiscard]] TaskLoss<T> episode_loss(const data::Task<T>& task) const {
    METALEARN_CHECK(task.query_x.defined() && task.query_x.shape()[0] > 0, ValueError,
                    "MatchingNet::loss: the episode has no query examples");
    const Labels& q_labels = task.query_labels;
    const Tensor<T> logp = log_probs(task.support_x, task.support_labels, task.query_x, task.ways);
    return {cross_entropy(logp, q_labels), metalearn::accuracy(logp, q_labels)};
  }
  /// The differentiable query loss (cross-entropy) of one episode.
  [[nodiscard]] Tensor<T> loss(const data::Task<T>& task) const { return episode_loss(task).loss; }

  /// The gradient of the query losses of the episodes of `batch` w.r.t. the
  /// embedding's parameters, summed over the episodes; nothing applied.
  [[nodiscard]] MetaGradient<T> meta_gradient(const data::TaskBatch<T>& batch) const {
    return trainer_.meta_gradient(batch,
                                  [&](const data::Task<T>& task) { return episode_loss(task); });
  }

  /// One Adam step along sum / tasks, then the learning-rate decay when due.
  /// @throws ValueError / ShapeError when `gradient` does not fit the parameters,
  /// NonFiniteError (with check_finite) when it or the updated parameters are not
  /// finite; nothing changes then.
  void apply(const MetaGradient<T>& gradient) { trainer_.apply(gradient); }

  /// apply(meta_gradient(batch)).
  StepStats meta_step(const data::TaskBatch<T>& batch) {
    return trainer_.meta_step(batch, [&](const data::Task<T>& task) { return episode_loss(task); });
  }

  /// The classifier of `task`'s support set (see classifier()).
  [[nodiscard]] Adapted adapt(const data::Task<T>& task) const {
    return classifier(task.support_x, task.support_labels);
  }

  /// log p(y | x) [N, ways] of inputs `x` under the classifier `adapted`.
  [[nodiscard]] Tensor<T> predict(const Adapted& adapted, const Tensor<T>& x) const {
    return adapted.log_probs(x);
  }

  /// log p(y | x) [Q, ways] of `query_x` given a labelled support set, without a graph.
  [[nodiscard]] Tensor<T> predict(const Tensor<T>& support_x, const Labels& support_labels,
                                  const Tensor<T>& query_x) const {
    autograd::NoGradGuard no_grad;
    return log_probs(support_x, support_labels, query_x);
  }

  /// A classifier fixed by the support set (see MatchingClassifier).
  [[nodiscard]] MatchingClassifier<T> classifier(const Tensor<T>& support_x,
                                                 const Labels& support_labels) const {
    return MatchingClassifier<T>(trainer_.model(), support_x, support_labels, options_.distance,
                                 options_.scale, full_context());
  }

  /// Mean and 95% interval of the query accuracy over `episodes` tasks of `sampler`.
  [[nodiscard]] EvalResult evaluate(const data::AnyTaskSampler<T>& sampler,
                                    std::size_t episodes) const {
    return trainer_.evaluate(sampler, episodes, options_.seed, [&](const data::Task<T>& task) {
      return accuracy(predict(task.support_x, task.support_labels, task.query_x),
                      task.query_labels);
    });
  }

  /// The parameters the outer optimizer updates: the embedding's, then the full
  /// context embeddings' (their names prefixed with "context.").
  [[nodiscard]] nn::ParamDict<T> meta_parameters() const { return trainer_.named_parameters(); }

  [[nodiscard]] const MatchingNetOptions<T>& options() const { return options_; }
  [[nodiscard]] nn::Module<T>& model() const { return trainer_.model(); }
  /// The full context embeddings (nullptr when off).
  [[nodiscard]] FullContextEmbedding<T>* full_context() const {
    return static_cast<FullContextEmbedding<T>*>(trainer_.context());
  }
  [[nodiscard]] std::int64_t steps_taken() const { return trainer_.steps_taken(); }
  [[nodiscard]] double current_lr() const { return trainer_.current_lr(); }

  /// The whole training state: the embedding's (and full context embeddings')
  /// parameters and buffers, the Adam state and steps_taken().
  [[nodiscard]] LearnerState<T> state() const { return trainer_.state(); }

  /// Continues from a state(): all or nothing (every name and shape is checked
  /// before anything changes). An empty `buffers` leaves the model's buffers alone.
  /// @throws ValueError / ShapeError naming the offending entry.
  void load_state(const LearnerState<T>& state) { trainer_.load_state(state); }

 private:
  // The embedding is drawn from `gen` before the context (a delegating constructor
  // sequences the two draws; two arguments of one call would not be).
  MatchingNet(std::shared_ptr<nn::Module<T>> owned, Generator& gen,
              const MatchingNetOptions<T>& options)
      : options_(options),
        trainer_(std::move(owned), nullptr, options_, "MatchingNet", make_context(options_, &gen)) {
  }

  static std::shared_ptr<nn::Module<T>> make_context(const MatchingNetOptions<T>& options,
                                                     Generator* gen) {
    if (options.full_context_dim == 0) return nullptr;
    METALEARN_CHECK(options.full_context_dim > 0 && options.full_context_steps > 0, ValueError,
                    "MatchingNet: full_context(", options.full_context_dim, ", ",
                    options.full_context_steps,
                    "): the embedding width and the attention steps must be positive");
    if (gen != nullptr) {
      return std::make_shared<FullContextEmbedding<T>>(options.full_context_dim,
                                                       options.full_context_steps, *gen);
    }
    Generator seeded(options.seed);
    return std::make_shared<FullContextEmbedding<T>>(options.full_context_dim,
                                                     options.full_context_steps, seeded);
  }

  void check_context_width(const Tensor<T>& embeddings) const {
    METALEARN_CHECK(embeddings.shape()[1] == options_.full_context_dim, ShapeError,
                    "MatchingNet: the embedding network returns width ", embeddings.shape()[1],
                    " but the full context embeddings were built for ", options_.full_context_dim,
                    "; set .full_context_dim = ", embeddings.shape()[1]);
  }

  MatchingNetOptions<T> options_;
  detail::EpisodicTrainer<T> trainer_;
};

static_assert(MetaLearner<MatchingNet<float>> && MetaLearner<MatchingNet<double>>);

}  // namespace metalearn::algorithms
