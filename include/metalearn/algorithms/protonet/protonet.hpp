#pragma once
/// @file
/// Prototypical Networks (Snell, Swersky & Zemel 2017): a metric meta-learner.
///
/// An embedding network f maps images to vectors. The prototype of class k is the
/// mean embedding of its support examples, c_k = mean_{i: y_i = k} f(x_i), and a
/// query is classified by a softmax over negative distances to the prototypes,
/// @code{.unparsed}
///   log p(y = k | x) = log_softmax_k( -d(f(x), c_k) ),
/// @endcode
/// trained by the query cross-entropy of episodes. Adapting to a new task is a
/// forward pass over its support set: no gradient steps, so a PrototypeClassifier
/// built once from a support set classifies any number of queries in a deployed
/// program.
// SPDX-License-Identifier: MIT

#include <cstdint>
#include <memory>
#include <vector>

#include "metalearn/algorithms/common.hpp"
#include "metalearn/algorithms/episodic.hpp"
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

/// The distance between embeddings and prototypes (squared Euclidean is the
/// paper's choice); shared with the other metric-based learners.
using metalearn::Distance;

/// The prototypes [ways, D] of `embeddings` [N, D] with integral `labels` (N values in
/// 0..ways-1): the mean embedding of each class. Differentiable in the embeddings.
/// @throws ShapeError on mismatched sizes, ValueError on a label outside [0, ways) or
/// a class without examples.
template <class T>
Tensor<T> class_prototypes(const Tensor<T>& embeddings, const Labels& labels, Index ways);

/// The logits [Q, ways] = -scale * d(query_i, prototype_k) for `query` [Q, D] and
/// `prototypes` [ways, D]; log_softmax over them is log p(y = k | x).
template <class T>
Tensor<T> prototype_logits(const Tensor<T>& query, const Tensor<T>& prototypes,
                           Distance distance = Distance::kSquaredEuclidean, T scale = T(1));

/// The prototypical loss of one episode from its embeddings: the mean query
/// cross-entropy of prototype_logits against `query_labels`.
template <class T>
Tensor<T> prototype_loss(const Tensor<T>& support_embeddings, const Labels& support_labels,
                         const Tensor<T>& query_embeddings, const Labels& query_labels, Index ways,
                         Distance distance = Distance::kSquaredEuclidean, T scale = T(1));

/// Options of ProtoNet, with the paper's defaults (Adam 1e-3, halved every 2000
/// episodes, squared Euclidean distance, the 4-block 64-channel ConvNet):
/// `ProtoNetOptions<float>{.lr = 1e-3, .threads = 2}`.
/// Training and test episodes are independent: meta_step() takes episodes of any
/// ways/shots/queries (the paper trains Omniglot 60-way 5-shot) and evaluate()
/// episodes of any other configuration. The fields up to `seed` are those of every
/// metric learner (MatchingNetOptions has them too).
template <class T = float>
struct ProtoNetOptions {
  /// Distance between embeddings and prototypes.
  Distance distance = Distance::kSquaredEuclidean;
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
};

/// A classifier fixed by one support set: an independent copy of the embedding
/// network (in evaluation mode) and the class prototypes. Built once, it classifies
/// any number of queries, in any batches, from any number of threads; later
/// training of the ProtoNet does not change it.
///
/// @code
/// auto clf = protonet.classifier(task.support_x, task.support_labels);  // one forward pass
/// Labels labels = clf.classify(images);  // no gradient steps
/// @endcode
template <class T = float>
class PrototypeClassifier {
 public:
  /// Embeds the support set with a copy of `embedding` and averages each class.
  /// @throws ShapeError / ValueError as class_prototypes.
  PrototypeClassifier(const nn::Module<T>& embedding, const Tensor<T>& support_x,
                      const Labels& support_labels, Distance distance = Distance::kSquaredEuclidean,
                      T scale = T(1));

  /// Logits [N, ways] (negative scaled distances) of inputs `x`.
  [[nodiscard]] Tensor<T> logits(const Tensor<T>& x) const;
  /// log p(y = k | x), [N, ways].
  [[nodiscard]] Tensor<T> log_probs(const Tensor<T>& x) const;
  /// The most probable label of every row of `x`.
  [[nodiscard]] Labels classify(const Tensor<T>& x) const;

  [[nodiscard]] const Tensor<T>& prototypes() const { return prototypes_; }
  [[nodiscard]] Index ways() const { return prototypes_.shape()[0]; }

 private:
  std::shared_ptr<nn::Module<T>> embedding_;
  Tensor<T> prototypes_;
  Distance distance_;
  T scale_;
};

/// Prototypical Networks over any embedding nn::Module (outputs [N, D]).
///
/// The module is in training mode only inside meta_step() and in evaluation mode
/// otherwise (this matters only for batch norm with running statistics). An
/// episode's support and query sets are embedded in one batch, as in the paper's
/// code. The episodes of a meta-batch run on a thread pool and their gradients are
/// reduced in task order, so parameters equal the serial run bit for bit (with
/// running-statistics batch norm and several episodes per meta-batch on several
/// threads, the running statistics are updated in completion order).
///
/// @code
/// Generator gen(0);
/// algorithms::ProtoNet<float> protonet(gen);          // ConvNet4 embedding
/// data::EpisodicSampler<float> train(glyphs, {.ways = 60, .shots = 5, .queries = 5});
/// for (int s = 0; s < 5000; ++s) protonet.meta_step({train.sample(gen)});
/// auto acc = protonet.evaluate(test_episodes, 600);    // mean +- 95% CI
/// @endcode
template <class T = float>
class ProtoNet {
 public:
  /// Uses `embedding` (which must outlive the ProtoNet); its parameters are trained.
  ProtoNet(nn::Module<T>& embedding, ProtoNetOptions<T> options = {});
  /// Builds and owns a ConvNet4 embedding from options.embedding, initialised by `gen`.
  explicit ProtoNet(Generator& gen, ProtoNetOptions<T> options = {});

  /// Embeddings [N, D] of inputs `x` (with the module's current mode).
  [[nodiscard]] Tensor<T> embed(const Tensor<T>& x) const;

  /// The differentiable query loss of one episode and its query accuracy.
  [[nodiscard]] TaskLoss<T> episode_loss(const data::Task<T>& task) const;
  /// The differentiable query loss of one episode.
  [[nodiscard]] Tensor<T> loss(const data::Task<T>& task) const { return episode_loss(task).loss; }

  using value_type = T;
  /// What adapt() returns: a classifier fixed by the task's support set.
  using Adapted = PrototypeClassifier<T>;

  /// The gradient of the query losses of the episodes of `batch` w.r.t.\ the
  /// embedding's parameters, summed over the episodes; nothing applied.
  [[nodiscard]] MetaGradient<T> meta_gradient(const data::TaskBatch<T>& batch) const;

  /// One Adam step along sum / tasks, then the learning-rate decay when due.
  /// @throws ValueError / ShapeError when `gradient` does not fit the parameters,
  /// NonFiniteError (with check_finite) when it or the updated parameters are not
  /// finite; nothing changes then.
  void apply(const MetaGradient<T>& gradient);

  /// apply(meta_gradient(batch)): one Adam step on the mean query loss of the
  /// episodes of `batch`.
  StepStats meta_step(const data::TaskBatch<T>& batch);

  /// The classifier of `task`'s support set (see classifier()).
  [[nodiscard]] Adapted adapt(const data::Task<T>& task) const;

  /// log p(y | x) [N, ways] of inputs `x` under the classifier `adapted`.
  [[nodiscard]] Tensor<T> predict(const Adapted& adapted, const Tensor<T>& x) const;

  /// log p(y | x) [Q, ways] of `query_x` given a labelled support set (labels
  /// 0..ways-1). Support and queries are embedded in one batch.
  [[nodiscard]] Tensor<T> predict(const Tensor<T>& support_x, const Labels& support_labels,
                                  const Tensor<T>& query_x) const;

  /// A classifier fixed by the support set (see PrototypeClassifier).
  [[nodiscard]] PrototypeClassifier<T> classifier(const Tensor<T>& support_x,
                                                  const Labels& support_labels) const;

  /// Mean and 95% interval of the query accuracy over `episodes` tasks of `sampler`.
  [[nodiscard]] EvalResult evaluate(const data::AnyTaskSampler<T>& sampler,
                                    std::size_t episodes) const;

  /// The parameters the outer optimizer updates: the embedding's.
  [[nodiscard]] nn::ParamDict<T> meta_parameters() const {
    return trainer_.model().named_parameters();
  }

  [[nodiscard]] const ProtoNetOptions<T>& options() const { return options_; }
  [[nodiscard]] nn::Module<T>& model() const { return trainer_.model(); }
  [[nodiscard]] std::int64_t steps_taken() const { return trainer_.steps_taken(); }
  [[nodiscard]] double current_lr() const { return trainer_.current_lr(); }

  /// The whole training state: the embedding's parameters and buffers, the Adam
  /// state (moments, step count, the current learning rate of the decay schedule)
  /// and steps_taken().
  [[nodiscard]] LearnerState<T> state() const;

  /// Continues from a state(): all or nothing (every name and shape is checked
  /// before anything changes). An empty `buffers` leaves the model's buffers alone.
  /// @throws ValueError / ShapeError naming the offending entry.
  void load_state(const LearnerState<T>& state);

 private:
  ProtoNetOptions<T> options_;
  detail::EpisodicTrainer<T> trainer_;
};

}  // namespace metalearn::algorithms

#include "metalearn/algorithms/protonet/protonet_impl.hpp"  // IWYU pragma: export
