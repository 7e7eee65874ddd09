// Prototypical Networks: prototypes, distances and log-probabilities against a hand
// computation, gradchecks through the prototype loss, the fixed-support classifier,
// determinism across threads, resuming from a checkpoint's contents, errors, and a
// short run on procedural glyphs.
#include <gtest/gtest.h>

#include <cmath>
#include <metalearn/metalearn.hpp>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;

TEST(ProtoNet, PrototypesAndDistancesMatchHandComputation) {
  // Class 0: (0,0), (2,0) -> prototype (1,0); class 1: (0,4), (0,2) -> (0,3).
  const auto support = ml::from_vector<double>({0, 0, 0, 4, 2, 0, 0, 2}, {4, 2});
  const std::vector<ml::Index> labels{0, 1, 0, 1};
  const auto protos = alg::class_prototypes(support, labels, 2);
  ASSERT_EQ(protos.shape(), (ml::Shape{2, 2}));
  EXPECT_DOUBLE_EQ(protos.at(0, 0), 1.0);
  EXPECT_DOUBLE_EQ(protos.at(0, 1), 0.0);
  EXPECT_DOUBLE_EQ(protos.at(1, 0), 0.0);
  EXPECT_DOUBLE_EQ(protos.at(1, 1), 3.0);

  // Query (1,1): squared distances 1 and 1 + 4 = 5.
  const auto query = ml::from_vector<double>({1, 1, -1, 3}, {2, 2});
  const auto logits = alg::prototype_logits(query, protos);
  EXPECT_NEAR(logits.at(0, 0), -1.0, 1e-12);
  EXPECT_NEAR(logits.at(0, 1), -5.0, 1e-12);
  EXPECT_NEAR(logits.at(1, 0), -(4.0 + 9.0), 1e-12);
  EXPECT_NEAR(logits.at(1, 1), -1.0, 1e-12);
  const double log_p0 = -1.0 - std::log(std::exp(-1.0) + std::exp(-5.0));
  const auto loss = alg::prototype_loss(support, labels, query, {0, 1}, 2);
  const double log_p1 = -1.0 - std::log(std::exp(-13.0) + std::exp(-1.0));
  EXPECT_NEAR(loss.item(), -(log_p0 + log_p1) / 2.0, 1e-12);

  // Cosine: logits are scale * (cos - 1); cos((1,1), (1,0)) = 1/sqrt(2).
  const auto cos_logits = alg::prototype_logits(query, protos, alg::Distance::kCosine, 10.0);
  EXPECT_NEAR(cos_logits.at(0, 0), 10.0 * (1.0 / std::sqrt(2.0) - 1.0), 1e-12);
  EXPECT_NEAR(cos_logits.at(0, 1), 10.0 * (1.0 / std::sqrt(2.0) - 1.0), 1e-12);
  EXPECT_NEAR(cos_logits.at(1, 1), 10.0 * (3.0 / std::sqrt(10.0) - 1.0), 1e-12);
}

TEST(ProtoNet, GradcheckThroughPrototypeLoss) {
  ml::Generator gen(21);
  const auto support = ml::randn<double>({6, 3}, gen);
  const auto query = ml::randn<double>({5, 3}, gen);
  const std::vector<ml::Index> s_labels{0, 1, 2, 2, 1, 0};
  const std::vector<ml::Index> q_labels{2, 0, 1, 1, 0};
  for (const auto distance : {alg::Distance::kSquaredEuclidean, alg::Distance::kCosine}) {
    auto f = [&](const std::vector<ml::Tensor<double>>& in) {
      return alg::prototype_loss(in[0], s_labels, in[1], q_labels, 3, distance, 2.0);
    };
    const auto r = ml::autograd::gradcheck(f, {support, query});
    EXPECT_TRUE(r.ok) << r.message;
  }
  // Through an embedding's weights: e = tanh(x W^T), shared by support and query.
  const auto xs = ml::randn<double>({6, 4}, gen);
  const auto xq = ml::randn<double>({5, 4}, gen);
  auto g = [&](const std::vector<ml::Tensor<double>>& in) {
    const auto es = ml::tanh(ml::mm(xs, in[0], false, true));
    const auto eq = ml::tanh(ml::mm(xq, in[0], false, true));
    return alg::prototype_loss(es, s_labels, eq, q_labels, 3);
  };
  const auto r = ml::autograd::gradcheck(g, {ml::randn<double>({3, 4}, gen)});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(ProtoNet, RejectsMissingClassesAndBadLabels) {
  const auto e = ml::zeros<double>({3, 2});
  EXPECT_THROW((void)alg::class_prototypes(e, {0, 0, 2}, 3), ml::ValueError);  // class 1 empty
  EXPECT_THROW((void)alg::class_prototypes(e, {0, 1, 3}, 3), ml::ValueError);
  EXPECT_THROW((void)alg::class_prototypes(e, {0, 1}, 2), ml::ShapeError);
  try {
    (void)alg::class_prototypes(e, {0, 0, 2}, 3);
  } catch (const ml::ValueError& err) {
    EXPECT_NE(std::string(err.what()).find("class_prototypes: class 1 of 3 has no support example"),
              std::string::npos)
        << err.what();
  }
  ml::Generator gen(1);
  EXPECT_THROW(alg::ProtoNet<float>(gen, alg::ProtoNetOptions<float>{.lr = 0.0}), ml::ValueError);
  alg::ProtoNet<float> net(gen, alg::ProtoNetOptions<float>{.embedding = ml::nn::ConvNet4Options{
                                                                .hidden = 4, .image_size = 16}});
  EXPECT_THROW(net.meta_step({}), ml::ValueError);
}

TEST(ProtoNet, ClassifierMatchesPredictAndIgnoresLaterTraining) {
  ml::Generator gen(22);
  ml::nn::MLP<double> embedding({4, 8, 5}, gen);
  alg::ProtoNet<double> protonet(embedding, alg::ProtoNetOptions<double>{.lr = 0.05});
  const auto sx = ml::randn<double>({6, 4}, gen);
  const ml::Labels sy{0, 1, 2, 0, 1, 2};
  const auto qx = ml::randn<double>({7, 4}, gen);
  const auto clf = protonet.classifier(sx, sy);
  EXPECT_EQ(clf.ways(), 3);
  const auto logp = protonet.predict(sx, sy, qx);
  const auto clf_logp = clf.log_probs(qx);
  ASSERT_EQ(logp.shape(), (ml::Shape{7, 3}));
  for (ml::Index i = 0; i < logp.numel(); ++i) {
    EXPECT_NEAR(logp.data()[i], clf_logp.data()[i], 1e-12);
  }
  // Rows of probabilities sum to one; classify is the argmax.
  const auto labels = clf.classify(qx);
  for (ml::Index i = 0; i < 7; ++i) {
    double s = 0;
    for (ml::Index k = 0; k < 3; ++k) s += std::exp(logp.at(i, k));
    EXPECT_NEAR(s, 1.0, 1e-12);
    EXPECT_EQ(labels[static_cast<std::size_t>(i)],
              ml::argmax(logp, 1)[static_cast<std::size_t>(i)]);
  }
  // Training moves the ProtoNet but not the classifier built before.
  ml::data::Task<double> task;
  task.support_x = sx;
  task.support_labels = sy;
  task.query_x = qx;
  task.query_labels = {0, 1, 2, 0, 1, 2, 0};
  task.ways = 3;
  const auto stats = protonet.meta_step({task});
  EXPECT_GT(stats.meta_loss, 0.0);
  EXPECT_GE(stats.post_accuracy.value(), 0.0);
  const auto after = clf.log_probs(qx);
  const auto moved = protonet.predict(sx, sy, qx);
  double same = 0, changed = 0;
  for (ml::Index i = 0; i < after.numel(); ++i) {
    same += std::abs(after.data()[i] - clf_logp.data()[i]);
    changed += std::abs(moved.data()[i] - logp.data()[i]);
  }
  EXPECT_EQ(same, 0.0);
  EXPECT_GT(changed, 1e-6);
}

// 4 episodes on 3 threads: three side by side, the fourth alone over the pool.
TEST(ProtoNet, ParallelEpisodesEqualSerialBitForBit) {
  auto run = [](int threads) {
    ml::Generator gen(23);
    ml::nn::MLP<double> embedding({3, 6, 4}, gen);
    alg::ProtoNet<double> protonet(embedding,
                                   alg::ProtoNetOptions<double>{.lr = 0.01, .threads = threads});
    ml::Generator data_gen(24);
    for (int step = 0; step < 3; ++step) {
      ml::data::TaskBatch<double> batch;
      for (int i = 0; i < 4; ++i) {
        ml::data::Task<double> t;
        t.support_x = ml::randn<double>({4, 3}, data_gen);
        t.support_labels = {0, 1, 0, 1};
        t.query_x = ml::randn<double>({4, 3}, data_gen);
        t.query_labels = {1, 0, 1, 0};
        t.ways = 2;
        batch.push_back(t);
      }
      protonet.meta_step(batch);
    }
    std::vector<double> out;
    for (const auto& p : embedding.parameters())
      out.insert(out.end(), p.data(), p.data() + p.numel());
    return out;
  };
  EXPECT_EQ(run(1), run(3));
}

// A meta-batch of one episode spreads its convolutions over the threads instead of
// running episodes side by side; the parameters must not depend on it.
TEST(ProtoNet, OneEpisodeOnSeveralThreadsEqualsOneThread) {
  ml::data::ProceduralGlyphs glyphs({.split = ml::data::Split::kTrain, .image_size = 28});
  ml::data::EpisodicSampler<float> episodes(glyphs, {.ways = 20, .shots = 2, .queries = 1});
  auto run = [&](int threads) {
    ml::Generator gen(33);
    alg::ProtoNet<float> protonet(
        gen, alg::ProtoNetOptions<float>{
                 .embedding =
                     ml::nn::ConvNet4Options{
                         .hidden = 8,
                         .image_size = 28,
                         .batch_norm =
                             ml::nn::BatchNormOptions{.mode = ml::nn::BatchNormMode::kRunning}},
                 .threads = threads});
    ml::data::MetaBatchSampler<float> batches(episodes, {.batch = 1, .seed = 9});
    for (int step = 0; step < 2; ++step) protonet.meta_step(batches.next());
    std::vector<float> out;
    for (const auto& dict : {protonet.model().named_parameters(), protonet.model().named_buffers()})
      for (const auto& [name, t] : dict) out.insert(out.end(), t.data(), t.data() + t.numel());
    return out;
  };
  EXPECT_EQ(run(1), run(2));
}

TEST(ProtoNet, LearningRateHalvesOnSchedule) {
  ml::Generator gen(25);
  ml::nn::MLP<double> embedding({2, 3}, gen);
  alg::ProtoNet<double> protonet(
      embedding, alg::ProtoNetOptions<double>{.lr = 0.1, .lr_decay = 0.5, .lr_decay_every = 2});
  ml::data::Task<double> t;
  t.support_x = ml::randn<double>({2, 2}, gen);
  t.support_labels = {0, 1};
  t.query_x = ml::randn<double>({2, 2}, gen);
  t.query_labels = {0, 1};
  const std::vector<double> expected{0.1, 0.1, 0.05, 0.05, 0.025};
  for (double lr : expected) {
    EXPECT_DOUBLE_EQ(protonet.current_lr(), lr);
    protonet.meta_step({t});
  }
}

// What a checkpoint holds (parameters, batch-norm running statistics, the outer
// optimizer's state) continues a run exactly: Adam moments, step count and the
// learning-rate schedule, which halves across the resume point here.
TEST(ProtoNet, ResumingFromParametersBuffersAndOuterStateContinuesBitForBit) {
  const auto options = alg::ProtoNetOptions<float>{
      .lr = 2e-3,
      .lr_decay = 0.5,
      .lr_decay_every = 3,
      .embedding = ml::nn::ConvNet4Options{
          .hidden = 6,
          .image_size = 16,
          .batch_norm = ml::nn::BatchNormOptions{.mode = ml::nn::BatchNormMode::kRunning}}};
  ml::data::ProceduralGlyphs glyphs({.split = ml::data::Split::kTrain, .image_size = 16});
  ml::data::EpisodicSampler<float> episodes(glyphs, {.ways = 4, .shots = 2, .queries = 2});
  auto state_of = [](const alg::ProtoNet<float>& p) {
    std::vector<float> out;
    for (const auto& dict : {p.model().named_parameters(), p.model().named_buffers()})
      for (const auto& [name, t] : dict) out.insert(out.end(), t.data(), t.data() + t.numel());
    return out;
  };

  ml::Generator gen(31);
  alg::ProtoNet<float> straight(gen, options);
  ml::data::MetaBatchSampler<float> batches(episodes, {.batch = 1, .seed = 8});
  for (int i = 0; i < 2; ++i) straight.meta_step(batches.next());
  const alg::LearnerState<float> saved = straight.state();
  EXPECT_FALSE(saved.buffers.empty());  // running statistics
  for (int i = 2; i < 5; ++i) straight.meta_step(batches.next());

  ml::Generator other(32);  // other initial values
  alg::ProtoNet<float> resumed(other, options);
  resumed.load_state(saved);
  EXPECT_EQ(resumed.steps_taken(), 2);
  ml::data::MetaBatchSampler<float> rest(episodes, {.batch = 1, .seed = 8});
  rest.set_position(2);
  for (int i = 2; i < 5; ++i) resumed.meta_step(rest.next());
  EXPECT_EQ(resumed.steps_taken(), 5);
  EXPECT_EQ(resumed.current_lr(), straight.current_lr());
  EXPECT_EQ(resumed.current_lr(), 1e-3);
  EXPECT_EQ(state_of(resumed), state_of(straight));

  // A state of another model's optimizer is refused.
  ml::nn::MLP<float> mlp({2, 3}, gen);
  alg::ProtoNet<float> small(mlp);
  alg::LearnerState<float> foreign = small.state();
  foreign.optimizer = saved.optimizer;
  EXPECT_THROW(small.load_state(foreign), ml::Error);
  EXPECT_THROW(small.load_state(saved), ml::Error);
}

TEST(ProtoNet, ShortGlyphRunRaisesAccuracyWellAboveChance) {
  ml::Generator gen(26);
  alg::ProtoNet<float> protonet(
      gen,
      alg::ProtoNetOptions<float>{
          .lr = 3e-3,
          .embedding =
              ml::nn::ConvNet4Options{
                  .hidden = 16,
                  .image_size = 16,
                  .batch_norm = ml::nn::BatchNormOptions{.mode = ml::nn::BatchNormMode::kRunning}},
          .seed = 5});
  ml::data::ProceduralGlyphs train_set({.split = ml::data::Split::kTrain, .image_size = 16});
  ml::data::ProceduralGlyphs test_set({.split = ml::data::Split::kTest, .image_size = 16});
  ml::data::EpisodicSampler<float> train(train_set, {.ways = 10, .shots = 2, .queries = 2});
  ml::data::EpisodicSampler<float> test(test_set, {.ways = 5, .shots = 1, .queries = 4});
  ml::data::MetaBatchSampler<float> batches(train, {.batch = 1, .seed = 7});
  const auto before = protonet.evaluate(test, 60);
  for (int step = 0; step < 60; ++step) protonet.meta_step(batches.next());
  const auto after = protonet.evaluate(test, 60);
  EXPECT_GT(after.mean, 0.6) << "before " << before.mean << " after " << after.mean;
  EXPECT_GT(after.mean, before.mean + 0.05) << "before " << before.mean << " after " << after.mean;
}
