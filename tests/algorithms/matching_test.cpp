// Matching Networks' classification rule: the attention against a hand-computed
// softmax of cosines, the class probabilities as sums of it, invariance to the
// order of the supports and of the classes, the unequal-shots path, gradients of
// first and second order, and the errors; full context embeddings against a
// step-by-step reference (tests/reference/matching_reference.py).
#include <gtest/gtest.h>

#include <cmath>
#include <metalearn/metalearn.hpp>
#include <numeric>
#include <vector>

#include "reference/matching_reference.hpp"
#include "support/gradients.hpp"

namespace ml = metalearn;
namespace alg = metalearn::algorithms;

namespace {

TEST(MatchingAttention, EqualsTheSoftmaxOfCosinesOnATinyCase) {
  // Query (1, 0); supports (2, 0), (0, 3), (1, 1): cosines 1, 0, 1/sqrt(2).
  const auto query = ml::from_vector<double>({1, 0}, {1, 2});
  const auto support = ml::from_vector<double>({2, 0, 0, 3, 1, 1}, {3, 2});
  const double c[3] = {1.0, 0.0, 1.0 / std::sqrt(2.0)};
  const double z = std::exp(c[0]) + std::exp(c[1]) + std::exp(c[2]);
  const auto a = alg::matching_attention(query, support);
  ASSERT_EQ(a.shape(), ml::Shape({1, 3}));
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(a.at(0, i), std::exp(c[i]) / z, 1e-15) << i;
  // With a scale of 10 the weights are the softmax of 10 * cos.
  const double z10 = std::exp(10 * c[0]) + std::exp(10 * c[1]) + std::exp(10 * c[2]);
  const auto a10 = alg::matching_attention(query, support, ml::Distance::kCosine, 10.0);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(a10.at(0, i), std::exp(10 * c[i]) / z10, 1e-15) << i;
  // Squared Euclidean: distances 1, 10, 1.
  const double d[3] = {1.0, 10.0, 1.0};
  const double ze = std::exp(-d[0]) + std::exp(-d[1]) + std::exp(-d[2]);
  const auto ae = alg::matching_attention(query, support, ml::Distance::kSquaredEuclidean, 1.0);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(ae.at(0, i), std::exp(-d[i]) / ze, 1e-15) << i;
}

TEST(MatchingLogProbs, AreTheLogOfTheAttentionSummedPerClass) {
  ml::Generator gen(1);
  const auto query = ml::randn<double>({4, 5}, gen);
  const auto support = ml::randn<double>({6, 5}, gen);
  const std::vector<ml::Index> labels = {2, 0, 1, 1, 0, 2};  // two shots each, shuffled
  for (const auto distance : {ml::Distance::kCosine, ml::Distance::kSquaredEuclidean}) {
    const auto a = alg::matching_attention(query, support, distance, 3.0);
    const auto logp = alg::matching_log_probs(query, support, labels, 3, distance, 3.0);
    ASSERT_EQ(logp.shape(), ml::Shape({4, 3}));
    for (ml::Index r = 0; r < 4; ++r) {
      double total = 0;
      for (ml::Index k = 0; k < 3; ++k) {
        double p = 0;
        for (std::size_t i = 0; i < labels.size(); ++i) {
          if (labels[i] == k) p += a.at(r, static_cast<ml::Index>(i));
        }
        EXPECT_NEAR(logp.at(r, k), std::log(p), 1e-13) << r << "," << k;
        total += std::exp(logp.at(r, k));
      }
      EXPECT_NEAR(total, 1.0, 1e-13);
    }
  }
}

TEST(MatchingLogProbs, UnequalShotsGiveTheSameRule) {
  ml::Generator gen(2);
  const auto query = ml::randn<double>({3, 4}, gen);
  const auto support = ml::randn<double>({5, 4}, gen);
  const std::vector<ml::Index> labels = {0, 1, 1, 1, 0};  // 2 and 3 shots
  const auto a = alg::matching_attention(query, support);
  const auto logp = alg::matching_log_probs(query, support, labels, 2);
  for (ml::Index r = 0; r < 3; ++r) {
    const double p0 = a.at(r, 0) + a.at(r, 4);
    EXPECT_NEAR(logp.at(r, 0), std::log(p0), 1e-13);
    EXPECT_NEAR(logp.at(r, 1), std::log(1.0 - p0), 1e-13);
  }
}

TEST(MatchingLogProbs, DoNotDependOnTheOrderOfSupportsOrOfClasses) {
  ml::Generator gen(3);
  const auto query = ml::randn<double>({5, 6}, gen);
  const auto support = ml::randn<double>({8, 6}, gen);
  const std::vector<ml::Index> labels = {0, 1, 2, 3, 0, 1, 2, 3};
  const auto base = alg::matching_log_probs(query, support, labels, 4);
  // Shuffle the supports with their labels: nothing changes.
  const std::vector<ml::Index> order = {5, 2, 7, 0, 3, 6, 1, 4};
  std::vector<ml::Index> shuffled_labels;
  for (const auto i : order) shuffled_labels.push_back(labels[static_cast<std::size_t>(i)]);
  const auto shuffled =
      alg::matching_log_probs(query, ml::index_select(support, 0, order), shuffled_labels, 4);
  // Rename the classes k -> perm[k]: the columns follow.
  const std::vector<ml::Index> perm = {2, 0, 3, 1};
  std::vector<ml::Index> renamed;
  for (const auto k : labels) renamed.push_back(perm[static_cast<std::size_t>(k)]);
  const auto relabelled = alg::matching_log_probs(query, support, renamed, 4);
  for (ml::Index r = 0; r < 5; ++r) {
    for (ml::Index k = 0; k < 4; ++k) {
      EXPECT_NEAR(shuffled.at(r, k), base.at(r, k), 1e-14);
      EXPECT_NEAR(relabelled.at(r, perm[static_cast<std::size_t>(k)]), base.at(r, k), 1e-14);
    }
  }
}

TEST(MatchingLogProbs, StayFiniteForLargeScales) {
  // Far-apart embeddings under the squared Euclidean distance: probabilities
  // underflow in double, their logarithms do not.
  const auto query = ml::from_vector<double>({0, 0}, {1, 2});
  const auto support = ml::from_vector<double>({1, 0, 40, 0}, {2, 2});
  const auto logp =
      alg::matching_log_probs(query, support, {0, 1}, 2, ml::Distance::kSquaredEuclidean, 1.0);
  EXPECT_NEAR(logp.at(0, 1), -(1600.0 - 1.0), 1e-9);
  EXPECT_TRUE(std::isfinite(logp.at(0, 0)));
}

TEST(MatchingLogProbs, GradientsOfFirstAndSecondOrder) {
  for (const auto distance : {ml::Distance::kCosine, ml::Distance::kSquaredEuclidean}) {
    for (const std::vector<ml::Index>& labels :
         {std::vector<ml::Index>{1, 0, 1, 0}, std::vector<ml::Index>{0, 1, 1, 1}}) {
      auto f = [&](const std::vector<ml::Tensor<double>>& in) {
        // The episode loss: cross-entropy of the log-probabilities against labels.
        return ml::cross_entropy(alg::matching_log_probs(in[0], in[1], labels, 2, distance, 2.0),
                                 std::vector<ml::Index>{1, 0, 0});
      };
      EXPECT_TRUE(ml::testing::check_gradients(f, {{3, 3}, {4, 3}})) << static_cast<int>(distance);
    }
  }
}

TEST(MatchingLogProbs, RejectBadLabelsAndShapes) {
  ml::Generator gen(4);
  const auto query = ml::randn<double>({2, 3}, gen);
  const auto support = ml::randn<double>({3, 3}, gen);
  EXPECT_THROW((void)alg::matching_log_probs(query, support, {0, 1}, 2), ml::ShapeError);
  EXPECT_THROW((void)alg::matching_log_probs(query, support, {0, 1, 2}, 2), ml::ValueError);
  EXPECT_THROW((void)alg::matching_log_probs(query, support, {0, 0, 0}, 2), ml::ValueError);
  EXPECT_THROW((void)alg::matching_log_probs(query, ml::randn<double>({3, 4}, gen), {0, 1, 0}, 2),
               ml::ShapeError);
}

// ---- MatchingNet ----------------------------------------------------------------

alg::MatchingNet<double> small_matching_net(std::uint64_t seed) {
  ml::Generator gen(seed);
  return alg::MatchingNet<double>(
      gen, alg::MatchingNetOptions<double>{
               .scale = 5.0,
               .embedding = ml::nn::ConvNet4Options{.hidden = 4,
                                                    .image_size = 16,
                                                    .batch_norm = ml::nn::BatchNormOptions{
                                                        .mode = ml::nn::BatchNormMode::kRunning}}});
}

ml::data::Task<double> glyph_episode(std::uint64_t seed, ml::Index ways, ml::Index shots) {
  ml::data::ProceduralGlyphs glyphs({.split = ml::data::Split::kTest, .image_size = 16});
  ml::data::EpisodicSampler<double> episodes(glyphs, {.ways = ways, .shots = shots, .queries = 3});
  ml::Generator gen(seed);
  return episodes.sample(gen);
}

TEST(MatchingNet, LossIsTheCrossEntropyOfTheRuleOnTheEmbeddings) {
  const auto net = small_matching_net(1);
  const auto task = glyph_episode(2, 4, 2);
  const auto result = net.episode_loss(task);
  const double loss = result.loss.item();
  ASSERT_TRUE(result.accuracy.has_value());
  const double accuracy = *result.accuracy;
  const auto support = net.embed(task.support_x);
  const auto query = net.embed(task.query_x);
  const auto logp =
      alg::matching_log_probs(query, support, task.support_labels, 4, ml::Distance::kCosine, 5.0);
  const auto labels = task.query_labels;
  // Embedded one batch at a time instead of together: equal in evaluation mode.
  EXPECT_NEAR(loss, ml::cross_entropy(logp, labels).item(), 1e-12);
  EXPECT_DOUBLE_EQ(accuracy, ml::accuracy(logp, labels));
  // The deployable classifier gives the same probabilities.
  const auto clf = net.adapt(task);
  const auto from_clf = net.predict(clf, task.query_x);
  for (ml::Index i = 0; i < logp.numel(); ++i) {
    EXPECT_NEAR(from_clf.data()[i], logp.data()[i], 1e-12);
  }
  EXPECT_EQ(clf.classify(task.query_x), ml::argmax(logp, 1));
  EXPECT_EQ(clf.ways(), 4);
}

TEST(MatchingNet, IsInvariantToTheOrderOfClassesAndOfSupports) {
  const auto net = small_matching_net(3);
  const auto task = glyph_episode(4, 3, 2);
  const auto base = net.predict(task.support_x, task.support_labels, task.query_x);
  // Rename the classes k -> perm[k] in the support labels: the columns follow.
  const std::vector<ml::Index> perm = {2, 0, 1};
  ml::Labels renamed;
  for (const auto k : task.support_labels) renamed.push_back(perm[static_cast<std::size_t>(k)]);
  const auto relabelled = net.predict(task.support_x, renamed, task.query_x);
  // Reverse the supports with their labels: nothing changes.
  std::vector<ml::Index> reverse(static_cast<std::size_t>(task.support_x.size(0)));
  std::iota(reverse.rbegin(), reverse.rend(), 0);
  const ml::Labels reversed_labels(task.support_labels.rbegin(), task.support_labels.rend());
  const auto reversed =
      net.predict(ml::index_select(task.support_x, 0, reverse), reversed_labels, task.query_x);
  for (ml::Index r = 0; r < base.size(0); ++r) {
    for (ml::Index k = 0; k < 3; ++k) {
      EXPECT_NEAR(relabelled.at(r, perm[static_cast<std::size_t>(k)]), base.at(r, k), 1e-12);
      EXPECT_NEAR(reversed.at(r, k), base.at(r, k), 1e-12);
    }
  }
}

TEST(MatchingNet, EpisodeLossPassesGradcheckThroughTheEmbedding) {
  // A small MLP embedding on vectors, so the whole episode is cheap to differentiate
  // numerically: gradient of the loss w.r.t. the embedding's weights, first and
  // second order.
  ml::Generator gen(5);
  ml::nn::MLP<double> embedding({3, 4, 3}, gen, ml::nn::Activation::kTanh);
  const alg::MatchingNet<double> net(embedding, alg::MatchingNetOptions<double>{.scale = 3.0});
  ml::data::Task<double> task;
  task.support_x = ml::randn<double>({4, 3}, gen);
  task.support_labels = {0, 1, 0, 1};
  task.query_x = ml::randn<double>({3, 3}, gen);
  task.query_labels = {1, 0, 1};
  task.ways = 2;
  const auto named = embedding.named_parameters();
  std::vector<ml::Tensor<double>> inputs;
  for (const auto& t : named.values()) inputs.push_back(t.detach());
  auto f = [&](const std::vector<ml::Tensor<double>>& w) {
    const auto fast = named.with_values(w);
    const ml::Index ns = task.support_x.size(0);
    const auto e = embedding.forward(ml::concat<double>({task.support_x, task.query_x}, 0), fast);
    return ml::cross_entropy(
        alg::matching_log_probs(ml::slice(e, 0, ns, e.size(0)), ml::slice(e, 0, 0, ns),
                                task.support_labels, 2, ml::Distance::kCosine, 3.0),
        task.query_labels);
  };
  EXPECT_NEAR(f(inputs).item(), net.loss(task).item(), 1e-14);
  EXPECT_TRUE(ml::testing::check_gradients_at(f, inputs));
}

TEST(MatchingNet, RejectsEpisodesWithoutQueriesAndBadOptions) {
  auto net = small_matching_net(6);
  auto task = glyph_episode(7, 2, 1);
  task.query_x = ml::zeros<double>({0, 1, 16, 16});
  task.query_labels.clear();
  EXPECT_THROW((void)net.loss(task), ml::ValueError);
  ml::Generator gen(8);
  EXPECT_THROW(alg::MatchingNet<double>(gen, alg::MatchingNetOptions<double>{.scale = 0.0}),
               ml::ValueError);
  EXPECT_THROW(alg::MatchingNet<double>(gen, alg::MatchingNetOptions<double>{.lr = -1.0}),
               ml::ValueError);
}

// ---- Full context embeddings ----------------------------------------------------

namespace ref = matching_reference;

ml::Tensor<double> reference_tensor(const std::vector<double>& values, ml::Index rows) {
  return ml::from_vector<double>(values, {rows, static_cast<ml::Index>(values.size()) / rows});
}

// The reference case's parameters, loaded into a FullContextEmbedding.
alg::FullContextEmbedding<double> reference_context() {
  ml::Generator gen(0);
  alg::FullContextEmbedding<double> context(ref::kDim, ref::kSteps, gen);
  ml::nn::ParamDict<double> values;
  const auto named = context.named_parameters();
  for (const auto& [name, flat] : ref::kParams) {
    values.insert(name, ml::from_vector<double>(flat, named.at(name).shape()));
  }
  context.load_state_dict(values);
  return context;
}

TEST(FullContextEmbedding, EqualsAStepByStepReference) {
  const auto context = reference_context();
  const auto support = reference_tensor(ref::kSupport, ref::kSupports);
  const auto query = reference_tensor(ref::kQuery, ref::kQueries);
  const auto g = context.encode_support(support);
  const auto f = context.encode_query(query, g);
  ASSERT_EQ(g.shape(), ml::Shape({ref::kSupports, ref::kDim}));
  ASSERT_EQ(f.shape(), ml::Shape({ref::kQueries, ref::kDim}));
  for (ml::Index i = 0; i < g.numel(); ++i) {
    EXPECT_NEAR(g.data()[i], ref::kEncodedSupport[static_cast<std::size_t>(i)], 1e-14) << i;
  }
  for (ml::Index i = 0; i < f.numel(); ++i) {
    EXPECT_NEAR(f.data()[i], ref::kEncodedQuery[static_cast<std::size_t>(i)], 1e-14) << i;
  }
  std::vector<ml::Index> labels;
  for (const double v : ref::kLabels) labels.push_back(static_cast<ml::Index>(v));
  const auto logp = alg::matching_log_probs(f, g, labels, 2);
  for (ml::Index i = 0; i < logp.numel(); ++i) {
    EXPECT_NEAR(logp.data()[i], ref::kLogProbs[static_cast<std::size_t>(i)], 1e-14) << i;
  }
  // Each query is encoded on its own: one row alone gives the same row.
  const auto second = context.encode_query(ml::slice(query, 0, 1, 2), g);
  for (ml::Index j = 0; j < ref::kDim; ++j) EXPECT_NEAR(second.at(0, j), f.at(1, j), 1e-15);
  // The supports' order matters (an LSTM reads them): reversed, g changes.
  std::vector<ml::Index> reverse(static_cast<std::size_t>(ref::kSupports));
  std::iota(reverse.rbegin(), reverse.rend(), 0);
  const auto g_reversed = context.encode_support(ml::index_select(support, 0, reverse));
  EXPECT_GT(std::abs(g_reversed.at(ref::kSupports - 1, 0) - g.at(0, 0)), 1e-6);
}

TEST(FullContextEmbedding, RejectsBadSizes) {
  ml::Generator gen(1);
  EXPECT_THROW(alg::FullContextEmbedding<double>(0, 2, gen), ml::ValueError);
  EXPECT_THROW(alg::FullContextEmbedding<double>(3, 0, gen), ml::ValueError);
  const alg::FullContextEmbedding<double> context(3, 2, gen);
  EXPECT_THROW((void)context.encode_support(ml::zeros<double>({4, 2})), ml::ShapeError);
  EXPECT_THROW((void)context.encode_support(ml::zeros<double>({0, 3})), ml::ShapeError);
  EXPECT_THROW((void)context.encode_query(ml::zeros<double>({2, 3}), ml::zeros<double>({4, 5})),
               ml::ShapeError);
  EXPECT_EQ(context.named_parameters().size(), 12U);
}

// A MatchingNet with full context embeddings over a small MLP embedding on vectors.
struct FullContextCase {
  ml::Generator gen{11};
  ml::nn::MLP<double> embedding{{3, 4, 3}, gen, ml::nn::Activation::kTanh};
  alg::MatchingNet<double> net{
      embedding, alg::MatchingNetOptions<double>{
                     .scale = 3.0, .seed = 12, .full_context_dim = 3, .full_context_steps = 2}};
  ml::data::Task<double> task;
  FullContextCase() {
    task.support_x = ml::randn<double>({4, 3}, gen);
    task.support_labels = {0, 1, 0, 1};
    task.query_x = ml::randn<double>({3, 3}, gen);
    task.query_labels = {1, 0, 1};
    task.ways = 2;
  }
};

TEST(MatchingNet, FullContextLossPassesGradcheck) {
  FullContextCase c;
  const auto named = c.net.meta_parameters();
  ASSERT_EQ(named.size(), c.embedding.named_parameters().size() + 12);
  EXPECT_TRUE(named.contains("context.query_attention.weight_ih"));
  std::vector<ml::Tensor<double>> inputs;
  for (const auto& t : named.values()) inputs.push_back(t.detach());
  const auto* context = c.net.full_context();
  ASSERT_NE(context, nullptr);
  auto f = [&](const std::vector<ml::Tensor<double>>& w) {
    const auto fast = named.with_values(w);
    const auto ctx = fast.sub("context.");
    const ml::Index ns = c.task.support_x.size(0);
    const auto e =
        c.embedding.forward(ml::concat<double>({c.task.support_x, c.task.query_x}, 0), fast);
    const auto g = context->encode_support(ml::slice(e, 0, 0, ns), ctx);
    const auto q = context->encode_query(ml::slice(e, 0, ns, e.size(0)), g, ctx);
    return ml::cross_entropy(
        alg::matching_log_probs(q, g, c.task.support_labels, 2, ml::Distance::kCosine, 3.0),
        c.task.query_labels);
  };
  EXPECT_NEAR(f(inputs).item(), c.net.loss(c.task).item(), 1e-14);
  EXPECT_TRUE(ml::testing::check_gradients_at(f, inputs));
  // meta_gradient() is the autograd gradient of the same loss, every context entry included.
  const auto gradient = c.net.meta_gradient({c.task});
  std::vector<ml::Tensor<double>> leaves;
  for (const auto& t : inputs) leaves.push_back(t.clone().requires_grad(true));
  const auto grads = ml::autograd::grad(std::vector{f(leaves)}, leaves);
  ASSERT_EQ(gradient.sum.size(), named.size());
  for (std::size_t i = 0; i < grads.size(); ++i) {
    const auto& mine = gradient.sum.at(named.names()[i]);
    for (ml::Index j = 0; j < mine.numel(); ++j) {
      EXPECT_NEAR(mine.data()[j], grads[i].data()[j], 1e-13) << named.names()[i];
    }
  }
}

TEST(MatchingNet, FullContextIsInvariantToClassNamesAndQueryOrder) {
  FullContextCase c;
  const auto base = c.net.predict(c.task.support_x, c.task.support_labels, c.task.query_x);
  // Renaming the classes (the supports keep their order) permutes the columns.
  const auto swapped = c.net.predict(c.task.support_x, ml::Labels{1, 0, 1, 0}, c.task.query_x);
  // Reversing the queries reverses the rows.
  const std::vector<ml::Index> reverse = {2, 1, 0};
  const auto reversed = c.net.predict(c.task.support_x, c.task.support_labels,
                                      ml::index_select(c.task.query_x, 0, reverse));
  for (ml::Index r = 0; r < 3; ++r) {
    for (ml::Index k = 0; k < 2; ++k) {
      EXPECT_NEAR(swapped.at(r, 1 - k), base.at(r, k), 1e-14);
      EXPECT_NEAR(reversed.at(2 - r, k), base.at(r, k), 1e-14);
    }
  }
  // The deployable classifier carries the context: the same probabilities.
  const auto clf = c.net.adapt(c.task);
  const auto from_clf = c.net.predict(clf, c.task.query_x);
  for (ml::Index i = 0; i < base.numel(); ++i) {
    EXPECT_NEAR(from_clf.data()[i], base.data()[i], 1e-14);
  }
}

TEST(MatchingNet, FullContextTrainsAndRestoresItsState) {
  FullContextCase c;
  const auto before = c.net.loss(c.task).item();
  const auto state = c.net.state();
  EXPECT_TRUE(state.parameters.contains("context.support_forward.weight_hh"));
  for (int s = 0; s < 30; ++s) (void)c.net.meta_step({c.task});
  EXPECT_LT(c.net.loss(c.task).item(), before);
  // A fresh learner loaded from the state computes what the first did before training.
  FullContextCase d;
  d.net.load_state(state);
  EXPECT_NEAR(d.net.loss(c.task).item(), before, 1e-14);
  // The learner's context is its own: another seed gives other values.
  ml::nn::MLP<double> embedding({3, 4, 3}, c.gen, ml::nn::Activation::kTanh);
  const alg::MatchingNet<double> other(
      embedding,
      alg::MatchingNetOptions<double>{.seed = 13, .full_context_dim = 3, .full_context_steps = 2});
  EXPECT_NE(other.full_context()->named_parameters().at("query_attention.bias_hh").data()[0],
            c.net.full_context()->named_parameters().at("query_attention.bias_hh").data()[0]);
}

TEST(MatchingNet, FullContextNamesAWidthMismatch) {
  ml::Generator gen(14);
  ml::nn::MLP<double> embedding({3, 4, 5}, gen, ml::nn::Activation::kTanh);
  const alg::MatchingNet<double> net(
      embedding, alg::MatchingNetOptions<double>{.full_context_dim = 3, .full_context_steps = 2});
  FullContextCase c;
  try {
    (void)net.loss(c.task);
    FAIL() << "expected a ShapeError";
  } catch (const ml::ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find(".full_context_dim = 5"), std::string::npos) << e.what();
  }
  EXPECT_THROW(
      alg::MatchingNet<double>(embedding, alg::MatchingNetOptions<double>{.full_context_dim = -1,
                                                                          .full_context_steps = 2}),
      ml::ValueError);
}

}  // namespace
