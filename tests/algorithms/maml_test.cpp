// MAML: the meta-gradient against finite differences of the whole
// "adapt on support, then loss on query" map, the first-order/second-order
// relation in closed form, Meta-SGD, MAML++ and ANIL, determinism across threads,
// and a short sinusoid run.
#include <gtest/gtest.h>

#include <cmath>
#include <metalearn/metalearn.hpp>

#include "support/gradients.hpp"

namespace ml = metalearn;
namespace alg = metalearn::algorithms;
using metalearn::testing::relative_error;

namespace {

ml::data::Task<double> regression_task(ml::Generator& gen, ml::Index shots, ml::Index queries) {
  ml::data::Task<double> t;
  t.support_x = ml::uniform<double>({shots, 1}, gen, -2.0, 2.0);
  t.support_y = ml::uniform<double>({shots, 1}, gen, -1.0, 1.0);
  t.query_x = ml::uniform<double>({queries, 1}, gen, -2.0, 2.0);
  t.query_y = ml::uniform<double>({queries, 1}, gen, -1.0, 1.0);
  t.ways = 1;
  t.shots = shots;
  t.queries = queries;
  return t;
}

// The mean meta-gradient (what the outer optimizer receives) of `batch`; `stats`
// receives the step's statistics when non-null.
template <class T>
std::vector<ml::Tensor<T>> mean_gradient(const alg::Maml<T>& maml,
                                         const ml::data::TaskBatch<T>& batch,
                                         alg::StepStats* stats = nullptr) {
  const alg::MetaGradient<T> g = maml.meta_gradient(batch);
  if (stats != nullptr) *stats = g.stats;
  return g.mean();
}

// Central differences of the mean query loss (after adaptation) w.r.t. every
// meta-parameter, computed by perturbing the parameters in place.
std::vector<double> numeric_meta_gradient(alg::Maml<double>& maml,
                                          const ml::data::TaskBatch<double>& batch,
                                          double eps = 1e-6) {
  std::vector<double> out;
  for (const auto& p : maml.meta_parameters().values()) {
    for (ml::Index i = 0; i < p.numel(); ++i) {
      const double saved = p.data()[i];
      alg::StepStats plus, minus;
      p.data()[i] = saved + eps;
      (void)mean_gradient(maml, batch, &plus);
      p.data()[i] = saved - eps;
      (void)mean_gradient(maml, batch, &minus);
      p.data()[i] = saved;
      out.push_back((plus.meta_loss - minus.meta_loss) / (2 * eps));
    }
  }
  return out;
}

template <class T>
std::vector<T> flatten(const std::vector<ml::Tensor<T>>& ts) {
  std::vector<T> out;
  for (const auto& t : ts) out.insert(out.end(), t.data(), t.data() + t.numel());
  return out;
}

class MamlFiniteDifferences : public ::testing::TestWithParam<int> {};

TEST_P(MamlFiniteDifferences, SecondOrderMetaGradientMatchesWholeMap) {
  const int steps = GetParam();
  ml::Generator gen(10 + static_cast<std::uint64_t>(steps));
  ml::nn::MLP<double> model({1, 5, 1}, gen, ml::nn::Activation::kTanh);
  alg::Maml<double> maml(model, alg::MamlOptions<double>{.inner_lr = 0.3, .inner_steps = steps});
  ml::data::TaskBatch<double> batch{regression_task(gen, 6, 7), regression_task(gen, 6, 7)};
  const auto analytic = flatten(mean_gradient(maml, batch));
  const auto numeric = numeric_meta_gradient(maml, batch);
  ASSERT_EQ(analytic.size(), numeric.size());
  EXPECT_LT(relative_error(analytic, numeric), 1e-6) << "inner steps: " << steps;

  // First order differs (the Hessian terms are missing).
  alg::Maml<double> fo(
      model, alg::MamlOptions<double>{.inner_lr = 0.3, .inner_steps = steps, .first_order = true});
  EXPECT_GT(relative_error(flatten(mean_gradient(fo, batch)), numeric), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(InnerSteps, MamlFiniteDifferences, ::testing::Values(1, 2, 3));

// Linear regression y = w x + b: the support Hessian H is constant, and the
// second-order meta-gradient is (I - alpha H) times the first-order one.
TEST(Maml, FirstOrderDiffersByTheHessianTerm) {
  ml::Generator gen(3);
  ml::nn::Linear<double> model(1, 1, gen);
  const double alpha = 0.1;
  auto task = regression_task(gen, 5, 8);
  alg::Maml<double> so(model, alg::MamlOptions<double>{.inner_lr = alpha});
  alg::Maml<double> fo(model, alg::MamlOptions<double>{.inner_lr = alpha, .first_order = true});
  const auto g_so = flatten(mean_gradient(so, ml::data::TaskBatch<double>{task}));
  const auto g_fo = flatten(mean_gradient(fo, ml::data::TaskBatch<double>{task}));
  ASSERT_EQ(g_so.size(), 2u);  // weight, bias
  // H = 2/n sum [x 1]^T [x 1].
  double sxx = 0, sx = 0;
  const auto n = static_cast<double>(task.support_x.numel());
  for (ml::Index i = 0; i < task.support_x.numel(); ++i) {
    const double x = task.support_x.data()[i];
    sxx += x * x;
    sx += x;
  }
  const double h00 = 2 * sxx / n, h01 = 2 * sx / n, h11 = 2.0;
  const double expect_w = g_fo[0] - alpha * (h00 * g_fo[0] + h01 * g_fo[1]);
  const double expect_b = g_fo[1] - alpha * (h01 * g_fo[0] + h11 * g_fo[1]);
  EXPECT_NEAR(g_so[0], expect_w, 1e-12);
  EXPECT_NEAR(g_so[1], expect_b, 1e-12);
  EXPECT_GT(std::abs(g_so[0] - g_fo[0]) + std::abs(g_so[1] - g_fo[1]), 1e-3);
}

TEST(Maml, MetaSgdLearningRateGradientMatchesFiniteDifferences) {
  ml::Generator gen(4);
  ml::nn::MLP<double> model({1, 4, 1}, gen, ml::nn::Activation::kTanh);
  alg::Maml<double> maml(
      model, alg::MamlOptions<double>{.inner_lr = 0.2, .inner_steps = 2, .learn_inner_lr = true});
  const auto meta = maml.meta_parameters();
  EXPECT_EQ(meta.size(), 2 * model.named_parameters().size());
  EXPECT_TRUE(meta.contains("lr.0.weight"));
  ml::data::TaskBatch<double> batch{regression_task(gen, 5, 5)};
  EXPECT_LT(relative_error(flatten(mean_gradient(maml, batch)), numeric_meta_gradient(maml, batch)),
            1e-6);
}

TEST(Maml, PerStepLearningRatesAndMultiStepLossMatchFiniteDifferences) {
  ml::Generator gen(5);
  ml::nn::MLP<double> model({1, 4, 1}, gen, ml::nn::Activation::kTanh);
  alg::Maml<double> maml(model, alg::MamlOptions<double>{.inner_lr = 0.2,
                                                         .inner_steps = 3,
                                                         .per_step_lr = true,
                                                         .multi_step_loss = true,
                                                         .msl_anneal_steps = 10});
  EXPECT_TRUE(maml.meta_parameters().contains("lr.0.weight.step2"));
  ml::data::TaskBatch<double> batch{regression_task(gen, 5, 5)};
  EXPECT_LT(relative_error(flatten(mean_gradient(maml, batch)), numeric_meta_gradient(maml, batch)),
            1e-6);
}

TEST(Maml, AnilAdaptsOnlyTheHeadAndItsMetaGradientMatches) {
  ml::Generator gen(6);
  ml::nn::MLP<double> model({1, 4, 4, 1}, gen, ml::nn::Activation::kTanh);
  // Children: 0 Linear, 1 Tanh, 2 Linear, 3 Tanh, 4 Linear (the head).
  alg::Maml<double> maml(
      model, alg::MamlOptions<double>{.inner_lr = 0.3, .inner_steps = 2, .adapt_only = {"4."}});
  auto task = regression_task(gen, 5, 5);
  const auto fast = maml.adapt(task, 2);
  const auto theta = model.named_parameters();
  for (const auto& [name, t] : theta) {
    const bool head = std::string(name).rfind("4.", 0) == 0;
    const auto& f = fast.weights.at(name);
    double diff = 0;
    for (ml::Index i = 0; i < t.numel(); ++i) diff += std::abs(f.data()[i] - t.data()[i]);
    if (head) {
      EXPECT_GT(diff, 1e-8) << name;
    } else {
      EXPECT_EQ(diff, 0.0) << name << " is in the body and must not adapt";
    }
  }
  ml::data::TaskBatch<double> batch{task};
  EXPECT_LT(relative_error(flatten(mean_gradient(maml, batch)), numeric_meta_gradient(maml, batch)),
            1e-6);
}

// The parameters of a 1-16-16-1 MLP after five sinusoid meta-steps of meta-batch 8.
std::vector<float> train_sinusoid(const alg::MamlOptions<float>& options) {
  ml::Generator gen(7);
  ml::nn::MLP<float> model({1, 16, 16, 1}, gen);
  alg::Maml<float> maml(model, options);
  ml::data::SinusoidTasks<float> family({.shots = 10, .queries = 10});
  ml::data::MetaBatchSampler<float> batches(family, {.batch = 8, .seed = 3});
  for (int i = 0; i < 5; ++i) (void)maml.meta_step(batches.next());
  return flatten(model.parameters());
}

TEST(Maml, ParallelTasksEqualSerialBitForBit) {
  EXPECT_EQ(train_sinusoid(alg::MamlOptions<float>{.threads = 1}),
            train_sinusoid(alg::MamlOptions<float>{.threads = 2}));
}

// Threads within tasks (one task at a time, its convolutions, batch norms and pools
// split over the pool) give the parameters of one thread and of tasks side by side,
// bit for bit: a ConvNet4 on 20-image support sets, large enough to be split. Tasks
// side by side with one task left over (3 on 2 threads, 4 on 3) run that task alone
// over the pool, also bit for bit.
TEST(Maml, ThreadsWithinTasksEqualOneThreadBitForBit) {
  ml::data::ProceduralGlyphs glyphs({.split = ml::data::Split::kTrain, .image_size = 28});
  ml::data::EpisodicSampler<float> episodes(glyphs, {.ways = 5, .shots = 4, .queries = 4});
  auto run = [&](alg::MamlOptions<float> options, ml::Index batch = 3) {
    ml::Generator gen(12);
    ml::nn::ConvNet4<float> net(ml::nn::ConvNet4Options{.hidden = 8, .ways = 5}, gen);
    options.inner_lr = 0.4f;
    options.inner_steps = 2;
    options.loss = alg::LossKind::kCrossEntropy;
    alg::Maml<float> maml(net, options);
    ml::data::MetaBatchSampler<float> batches(episodes, {.batch = batch, .seed = 5});
    for (int step = 0; step < 2; ++step) (void)maml.meta_step(batches.next());
    return flatten(net.parameters());
  };
  const auto serial = run(alg::MamlOptions<float>{.threads = 1});
  EXPECT_EQ(run(alg::MamlOptions<float>{.threads = 2, .threads_within_tasks = true}), serial);
  EXPECT_EQ(run(alg::MamlOptions<float>{.threads = 2}), serial);
  EXPECT_EQ(run(alg::MamlOptions<float>{.threads = 3}, 4),
            run(alg::MamlOptions<float>{.threads = 1}, 4));
}

TEST(Maml, ResumingFromItsStateContinuesBitForBit) {
  // Meta-SGD, so the learned learning rates are part of the state too.
  const auto options = alg::MamlOptions<float>{.learn_inner_lr = true, .seed = 4};
  ml::data::SinusoidTasks<float> family({.shots = 5, .queries = 5});
  ml::data::MetaBatchSampler<float> batches(family, {.batch = 4, .seed = 2});
  std::vector<ml::data::TaskBatch<float>> stream;
  for (int i = 0; i < 6; ++i) stream.push_back(batches.next());

  ml::Generator gen(11);
  ml::nn::MLP<float> model({1, 8, 8, 1}, gen);
  ml::nn::MLP<float> fresh({1, 8, 8, 1}, gen);  // other initial values
  alg::Maml<float> straight(model, options);
  for (int i = 0; i < 3; ++i) (void)straight.meta_step(stream[i]);
  const alg::LearnerState<float> saved = straight.state();
  for (int i = 3; i < 6; ++i) (void)straight.meta_step(stream[i]);

  alg::Maml<float> resumed(fresh, options);
  resumed.load_state(saved);
  EXPECT_EQ(resumed.steps_taken(), 3);
  for (int i = 3; i < 6; ++i) (void)resumed.meta_step(stream[i]);
  EXPECT_EQ(flatten(resumed.meta_parameters().values()),
            flatten(straight.meta_parameters().values()));

  ml::nn::ParamDict<float> missing;
  missing.insert("unrelated", ml::ones<float>({8, 1}));
  EXPECT_THROW(resumed.load_meta_parameters(missing), ml::ValueError);
}

TEST(Maml, SinusoidMetaTrainingMakesOneStepAdaptationWork) {
  ml::Generator gen(8);
  ml::nn::MLP<float> model({1, 40, 40, 1}, gen);
  alg::Maml<float> maml(model, alg::MamlOptions<float>{.inner_lr = 0.01f, .seed = 99});
  ml::data::SinusoidTasks<float> family({.shots = 10, .queries = 10});
  ml::data::MetaBatchSampler<float> batches(family, {.batch = 25, .seed = 1});
  for (int i = 0; i < 1500; ++i) (void)maml.meta_step(batches.next());
  ml::data::SinusoidTasks<float> test_family({.shots = 10, .queries = 50});
  const auto before = maml.evaluate(test_family, 200, 0);
  const auto after = maml.evaluate(test_family, 200, 1);
  EXPECT_LT(after.mean, 0.5 * before.mean)
      << "0 steps: " << before.mean << ", 1 step: " << after.mean;
}

// batch_tasks runs the meta-batch as one graph; every variant must give the
// per-task loop's meta-gradient and statistics (up to rounding, in double).
class MamlBatchedTasks : public ::testing::TestWithParam<int> {};

alg::MamlOptions<double> batched_variant(int variant) {
  auto o =
      alg::MamlOptions<double>{.inner_lr = 0.3, .inner_steps = 2, .pre_adaptation_stats = true};
  switch (variant) {
    case 1:
      o.first_order = true;
      break;
    case 2:
      o.learn_inner_lr = true;
      break;
    case 3:
      o.inner_steps = 3;
      o.per_step_lr = true;
      o.multi_step_loss = true;
      o.msl_anneal_steps = 10;
      break;
    case 4:
      o.adapt_only = {"4."};
      break;
    default:
      break;
  }
  return o;
}

// `options` with batch_tasks on.
alg::MamlOptions<double> batched(alg::MamlOptions<double> options) {
  options.batch_tasks = true;
  return options;
}

TEST_P(MamlBatchedTasks, MetaGradientAndStatisticsEqualThePerTaskLoop) {
  ml::Generator gen(21);
  ml::nn::MLP<double> model({1, 6, 6, 1}, gen, ml::nn::Activation::kTanh);
  ml::data::TaskBatch<double> batch;
  for (int i = 0; i < 4; ++i) batch.push_back(regression_task(gen, 5, 7));
  alg::Maml<double> loop(model, batched_variant(GetParam()));
  alg::Maml<double> one_graph(model, batched(batched_variant(GetParam())));
  alg::StepStats a, b;
  const auto expected = flatten(mean_gradient(loop, batch, &a));
  const auto got = flatten(mean_gradient(one_graph, batch, &b));
  ASSERT_EQ(got.size(), expected.size());
  EXPECT_LT(relative_error(got, expected), 1e-12);
  EXPECT_NEAR(b.meta_loss, a.meta_loss, 1e-12);
  EXPECT_NEAR(b.pre_loss.value(), a.pre_loss.value(), 1e-12);
  EXPECT_NEAR(b.post_loss, a.post_loss, 1e-12);
  EXPECT_EQ(b.tasks, a.tasks);
  // And the whole map's finite differences, for the second-order variants.
  if (GetParam() != 1) {
    EXPECT_LT(relative_error(got, numeric_meta_gradient(one_graph, batch)), 1e-6);
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, MamlBatchedTasks, ::testing::Values(0, 1, 2, 3, 4));

// Three 4-way tasks of 3-feature points: 8 support points and `queries` query points,
// labelled 0, 1, 2, 3, 0, ... in turn.
ml::data::TaskBatch<double> four_way_tasks(ml::Generator& gen, ml::Index queries) {
  const auto labels = [](ml::Index n) {
    ml::Labels v;
    for (ml::Index i = 0; i < n; ++i) v.push_back(i % 4);
    return v;
  };
  ml::data::TaskBatch<double> batch;
  for (int i = 0; i < 3; ++i) {
    ml::data::Task<double> t;
    t.support_x = ml::randn<double>({8, 3}, gen);
    t.support_labels = labels(8);
    t.query_x = ml::randn<double>({queries, 3}, gen);
    t.query_labels = labels(queries);
    t.ways = 4;
    batch.push_back(t);
  }
  return batch;
}

TEST(Maml, BatchedTasksReportTheLoopsAccuracyForClassification) {
  ml::Generator gen(22);
  ml::nn::MLP<double> model({3, 8, 4}, gen);
  const ml::data::TaskBatch<double> batch = four_way_tasks(gen, 12);
  const auto options = alg::MamlOptions<double>{
      .inner_lr = 0.5, .loss = alg::LossKind::kCrossEntropy, .pre_adaptation_stats = true};
  alg::Maml<double> loop(model, options);
  alg::Maml<double> one_graph(model, batched(options));
  alg::StepStats a, b;
  const auto expected = flatten(mean_gradient(loop, batch, &a));
  EXPECT_LT(relative_error(flatten(mean_gradient(one_graph, batch, &b)), expected), 1e-12);
  EXPECT_NEAR(b.post_accuracy.value(), a.post_accuracy.value(), 1e-12);
  EXPECT_NEAR(b.pre_accuracy.value(), a.pre_accuracy.value(), 1e-12);
  EXPECT_GE(b.post_accuracy.value(), 0.0);
}

TEST(Maml, PreAdaptationStatisticsAreMeasuredOnlyWhenAskedFor) {
  ml::Generator gen(23);
  ml::nn::MLP<double> model({3, 8, 4}, gen);
  const ml::data::TaskBatch<double> batch = four_way_tasks(gen, 8);
  const auto options =
      alg::MamlOptions<double>{.inner_lr = 0.5, .loss = alg::LossKind::kCrossEntropy};
  EXPECT_FALSE(options.pre_adaptation_stats);
  alg::Maml<double> plain(model, options);
  auto measuring = options;
  measuring.pre_adaptation_stats = true;
  alg::Maml<double> measured(model, measuring);
  alg::StepStats a, b;
  const auto expected = flatten(mean_gradient(plain, batch, &a));
  EXPECT_EQ(flatten(mean_gradient(measured, batch, &b)), expected);
  EXPECT_FALSE(a.pre_loss.has_value());
  EXPECT_FALSE(a.pre_accuracy.has_value());
  EXPECT_TRUE(a.post_accuracy.has_value());
  EXPECT_EQ(b.post_loss, a.post_loss);
  EXPECT_EQ(b.post_accuracy, a.post_accuracy);
  // Measured: the unadapted model's mean query loss and accuracy over the tasks.
  double loss = 0.0, acc = 0.0;
  for (const auto& t : batch) {
    const ml::Tensor<double> logits = model.forward(t.query_x);
    loss += ml::cross_entropy(logits, t.query_labels).item() / 3.0;
    acc += ml::accuracy(logits, t.query_labels) / 3.0;
  }
  EXPECT_NEAR(b.pre_loss.value(), loss, 1e-12);
  EXPECT_NEAR(b.pre_accuracy.value(), acc, 1e-12);
  EXPECT_NE(b.pre_loss.value(), b.post_loss);
}

TEST(Maml, BatchedTasksRejectModelsLossesAndShapesTheyCannotRun) {
  ml::Generator gen(23);
  ml::nn::ConvNet4<double> convnet(ml::nn::ConvNet4Options{.ways = 5}, gen);
  EXPECT_THROW(alg::Maml<double>(convnet, alg::MamlOptions<double>{.batch_tasks = true}),
               ml::ValueError);
  ml::nn::MLP<double> model({1, 4, 1}, gen);
  const alg::LossFunction<double> custom = [](const ml::Tensor<double>& p,
                                              const ml::Tensor<double>& y) {
    return ml::sum(ml::square(ml::sub(p, y)));
  };
  EXPECT_THROW(alg::Maml<double>(
                   model, alg::MamlOptions<double>{.custom_loss = custom, .batch_tasks = true}),
               ml::ValueError);
  alg::Maml<double> maml(model, alg::MamlOptions<double>{.batch_tasks = true});
  ml::data::TaskBatch<double> uneven{regression_task(gen, 5, 5), regression_task(gen, 6, 5)};
  EXPECT_THROW((void)maml.meta_step(uneven), ml::ShapeError);
}

TEST(Maml, BatchedTasksTrainTheSinusoidMlpLikeTheLoop) {
  const auto loop = train_sinusoid(alg::MamlOptions<float>{});
  const auto batched = train_sinusoid(alg::MamlOptions<float>{.batch_tasks = true});
  ASSERT_EQ(loop.size(), batched.size());
  for (std::size_t i = 0; i < loop.size(); ++i) EXPECT_NEAR(batched[i], loop[i], 1e-5) << i;
}

TEST(Maml, EvaluateReportsAMeanAndAnInterval) {
  ml::Generator gen(9);
  ml::nn::MLP<float> model({1, 8, 1}, gen);
  alg::Maml<float> maml(model);
  ml::data::SinusoidTasks<float> family({.shots = 5, .queries = 5});
  const auto r = maml.evaluate(family, 50, 1);
  EXPECT_EQ(r.episodes, 50u);
  EXPECT_EQ(r.values.size(), 50u);
  EXPECT_GT(r.mean, 0.0);
  EXPECT_GT(r.ci95, 0.0);
  // Same seed, same episodes.
  EXPECT_EQ(maml.evaluate(family, 50, 1).values, r.values);
}

TEST(Maml, RejectsBadOptionsAndEmptyBatches) {
  ml::Generator gen(10);
  ml::nn::MLP<float> model({1, 4, 1}, gen);
  EXPECT_THROW(alg::Maml<float>(model, alg::MamlOptions<float>{.inner_steps = -1}), ml::ValueError);
  EXPECT_THROW(
      alg::Maml<float>(model, alg::MamlOptions<float>{.learn_inner_lr = true, .per_step_lr = true}),
      ml::ValueError);
  alg::Maml<float> maml(model);
  EXPECT_THROW((void)maml.meta_step({}), ml::ValueError);
}

// A built-in loss that does not fit the task's targets says which option fixes it.
TEST(Maml, ALossThatDoesNotFitTheTargetsNamesTheOptionToSet) {
  ml::Generator gen(25);
  ml::nn::MLP<double> classifier({2, 3}, gen);
  ml::data::Task<double> labelled;
  labelled.support_x = ml::uniform<double>({4, 2}, gen, -1.0, 1.0);
  labelled.support_labels = {0, 1, 2, 0};
  labelled.query_x = labelled.support_x;
  labelled.query_labels = labelled.support_labels;
  const auto message_of = [](const auto& call) {
    try {
      call();
    } catch (const ml::ShapeError& e) {
      return std::string(e.what());
    }
    return std::string("no ShapeError");
  };
  alg::Maml<double> regression(classifier);  // LossKind::kMse by default
  EXPECT_NE(message_of([&] {
              (void)regression.meta_gradient({labelled});
            }).find("set .loss = LossKind::kCrossEntropy"),
            std::string::npos);
  ml::nn::MLP<double> regressor({1, 4, 1}, gen);
  alg::Maml<double> classification(regressor,
                                   alg::MamlOptions<double>{.loss = alg::LossKind::kCrossEntropy});
  EXPECT_NE(message_of([&] {
              (void)classification.meta_gradient({regression_task(gen, 5, 5)});
            }).find("set .loss = LossKind::kMse"),
            std::string::npos);
  // A custom loss scores target values; on class labels it says so instead of guessing.
  alg::Maml<double> custom(
      classifier, alg::MamlOptions<double>{.custom_loss = [](const auto& p, const auto& y) {
        return ml::mse_loss(p, y);
      }});
  EXPECT_NE(
      message_of([&] {
        (void)custom.meta_gradient({labelled});
      }).find("the custom_loss, which scores target values, but the task carries 4 class labels"),
      std::string::npos);
}

// The custom-inner-loop path (clone, adapt on the caller's loss, meta_gradient_of),
// given the task's own loss, is the built-in meta-gradient of every variant it
// supports (the multi-step loss is the caller's to weight, so variant 3 is left out).
class MamlCloneLearner : public ::testing::TestWithParam<int> {};

TEST_P(MamlCloneLearner, CloneAdaptAndMetaGradientOfEqualTheBuiltInMetaGradient) {
  ml::Generator gen(23);
  ml::nn::MLP<double> model({1, 6, 6, 1}, gen, ml::nn::Activation::kTanh);
  ml::data::TaskBatch<double> batch;
  for (int i = 0; i < 3; ++i) batch.push_back(regression_task(gen, 5, 7));
  alg::Maml<double> maml(model, batched_variant(GetParam()));
  const alg::MetaGradient<double> expected = maml.meta_gradient(batch);
  ml::Tensor<double> total;
  for (const auto& task : batch) {
    auto learner = maml.clone();
    for (int k = 0; k < maml.options().inner_steps; ++k) {
      learner.adapt(ml::mse_loss(learner(task.support_x), task.support_y));
    }
    EXPECT_EQ(learner.steps(), maml.options().inner_steps);
    auto query = ml::mse_loss(learner(task.query_x), task.query_y);
    total = total.defined() ? total + query : query;
  }
  const alg::MetaGradient<double> got = maml.meta_gradient_of(total, batch.size());
  EXPECT_EQ(got.tasks, expected.tasks);
  EXPECT_EQ(got.sum.names(), expected.sum.names());
  EXPECT_NEAR(got.stats.meta_loss, expected.stats.meta_loss, 1e-12);
  EXPECT_LT(relative_error(flatten(got.sum.values()), flatten(expected.sum.values())), 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Variants, MamlCloneLearner, ::testing::Values(0, 1, 2, 4));

TEST(Maml, CloneLearnerAppliesAndRejectsLossesItCannotUse) {
  ml::Generator gen(24);
  ml::nn::MLP<double> model({1, 4, 1}, gen, ml::nn::Activation::kTanh);
  alg::Maml<double> maml(model, alg::MamlOptions<double>{.inner_lr = 0.1, .per_step_lr = true});
  const auto task = regression_task(gen, 5, 5);
  auto learner = maml.clone();
  // A custom loss: mean absolute error on the support set.
  learner.adapt(ml::mean(ml::abs(learner(task.support_x) - task.support_y)));
  // One learned rate per step (inner_steps 1, eval_inner_steps 1): a second step has none.
  EXPECT_THROW(learner.adapt(ml::mse_loss(learner(task.support_x), task.support_y)),
               ml::ValueError);
  EXPECT_THROW(learner.adapt(learner(task.support_x)), ml::ShapeError);
  EXPECT_THROW(learner.adapt(ml::zeros<double>({})), ml::ValueError);
  EXPECT_THROW((void)maml.meta_gradient_of(ml::zeros<double>({1}), 0), ml::ValueError);
  const auto before = maml.meta_parameters().values()[0].clone();
  auto query = ml::mse_loss(learner(task.query_x), task.query_y);
  maml.apply(maml.meta_gradient_of(query, 1));
  EXPECT_EQ(maml.steps_taken(), 1);
  EXPECT_NE(flatten(std::vector{before}), flatten(std::vector{maml.meta_parameters().values()[0]}));
}

}  // namespace

// The fold sees task 0, 1, 2, ... whatever order the tasks finish in, and on
// whichever threads they finish.
TEST(OrderedFold, FoldsInTaskOrderWhateverTheFinishingOrder) {
  std::vector<std::size_t> seen;
  alg::OrderedFold<std::size_t> fold(5, [&](std::size_t&& i) { seen.push_back(i); });
  for (std::size_t i : {3, 1, 0, 4, 2}) fold.put(i, i);
  EXPECT_EQ(seen, (std::vector<std::size_t>{0, 1, 2, 3, 4}));

  std::vector<std::size_t> threaded;
  alg::OrderedFold<std::size_t> parallel(64, [&](std::size_t&& i) { threaded.push_back(i); });
  ml::ThreadPool pool(3);
  pool.run(64, [&](std::size_t i) { parallel.put(63 - i, 63 - i); });
  std::vector<std::size_t> expected(64);
  for (std::size_t i = 0; i < 64; ++i) expected[i] = i;
  EXPECT_EQ(threaded, expected);
}
