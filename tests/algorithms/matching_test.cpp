// Matching Networks' classification rule: the attention against a hand-computed
// softmax of cosines, the class probabilities as sums of it, invariance to the
// order of the supports and of the classes, the unequal-shots path, gradients of
// first and second order, and the errors.
#include <gtest/gtest.h>

#include <cmath>
#include <metalearn/metalearn.hpp>
#include <numeric>
#include <vector>

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
      gen, alg::MatchingNetOptions<double>{}.scale(5.0).embedding(
               ml::nn::ConvNet4Options{}.hidden(4).image_size(16).batch_norm(
                   ml::nn::BatchNormOptions{}.mode(ml::nn::BatchNormMode::kRunning))));
}

ml::data::Task<double> glyph_episode(std::uint64_t seed, ml::Index ways, ml::Index shots) {
  ml::data::ProceduralGlyphs glyphs({.split = ml::data::Split::test, .image_size = 16});
  ml::data::EpisodicSampler<double> episodes(glyphs, {.ways = ways, .shots = shots, .queries = 3});
  ml::Generator gen(seed);
  return episodes.sample(gen);
}

TEST(MatchingNet, LossIsTheCrossEntropyOfTheRuleOnTheEmbeddings) {
  const auto net = small_matching_net(1);
  const auto task = glyph_episode(2, 4, 2);
  double accuracy = -1;
  const double loss = net.loss(task, &accuracy).item();
  const auto support = net.embed(task.support_x);
  const auto query = net.embed(task.query_x);
  const auto logp = alg::matching_log_probs(query, support, ml::to_labels(task.support_y), 4,
                                            ml::Distance::kCosine, 5.0);
  const auto labels = ml::to_labels(task.query_y);
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
  const auto base = net.predict(task.support_x, task.support_y, task.query_x);
  // Rename the classes k -> perm[k] in the support labels: the columns follow.
  const std::vector<ml::Index> perm = {2, 0, 1};
  std::vector<double> renamed;
  for (const auto k : ml::to_labels(task.support_y)) {
    renamed.push_back(static_cast<double>(perm[static_cast<std::size_t>(k)]));
  }
  const auto relabelled =
      net.predict(task.support_x, ml::from_vector<double>(renamed), task.query_x);
  // Reverse the supports with their labels: nothing changes.
  std::vector<ml::Index> reverse(static_cast<std::size_t>(task.support_x.size(0)));
  std::iota(reverse.rbegin(), reverse.rend(), 0);
  const auto reversed = net.predict(ml::index_select(task.support_x, 0, reverse),
                                    ml::index_select(task.support_y, 0, reverse), task.query_x);
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
  const alg::MatchingNet<double> net(embedding, alg::MatchingNetOptions<double>{}.scale(3.0));
  ml::data::Task<double> task;
  task.support_x = ml::randn<double>({4, 3}, gen);
  task.support_y = ml::from_vector<double>({0, 1, 0, 1});
  task.query_x = ml::randn<double>({3, 3}, gen);
  task.query_y = ml::from_vector<double>({1, 0, 1});
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
                                ml::to_labels(task.support_y), 2, ml::Distance::kCosine, 3.0),
        ml::to_labels(task.query_y));
  };
  EXPECT_NEAR(f(inputs).item(), net.loss(task).item(), 1e-14);
  EXPECT_TRUE(ml::testing::check_gradients_at(f, inputs));
}

TEST(MatchingNet, RejectsEpisodesWithoutQueriesAndBadOptions) {
  auto net = small_matching_net(6);
  auto task = glyph_episode(7, 2, 1);
  task.query_x = ml::zeros<double>({0, 1, 16, 16});
  task.query_y = ml::zeros<double>({0});
  EXPECT_THROW((void)net.loss(task), ml::ValueError);
  ml::Generator gen(8);
  EXPECT_THROW(alg::MatchingNet<double>(gen, alg::MatchingNetOptions<double>{}.scale(0.0)),
               ml::ValueError);
  EXPECT_THROW(alg::MatchingNet<double>(gen, alg::MatchingNetOptions<double>{}.lr(-1.0)),
               ml::ValueError);
}

}  // namespace
