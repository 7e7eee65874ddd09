// Tests of Task, the sinusoid and Gaussian-process families, AnyTaskSampler and
// MetaBatchSampler (determinism, threads, prefetching, resume).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <metalearn/data.hpp>
#include <metalearn/tensor.hpp>
#include <numbers>

namespace ml = metalearn;
namespace md = metalearn::data;

namespace {

template <class T>
bool same_tensor(const ml::Tensor<T>& a, const ml::Tensor<T>& b) {
  if (!a.defined() || !b.defined()) return a.defined() == b.defined();
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * sizeof(T)) == 0;
}

template <class T>
bool same_task(const md::Task<T>& a, const md::Task<T>& b) {
  return same_tensor(a.support_x, b.support_x) && same_tensor(a.support_y, b.support_y) &&
         same_tensor(a.query_x, b.query_x) && same_tensor(a.query_y, b.query_y) &&
         a.support_labels == b.support_labels && a.query_labels == b.query_labels &&
         a.ways == b.ways && a.shots == b.shots && a.queries == b.queries &&
         a.classes == b.classes && a.params == b.params;
}

template <class T>
bool same_batch(const md::TaskBatch<T>& a, const md::TaskBatch<T>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!same_task(a[i], b[i])) return false;
  }
  return true;
}

}  // namespace

TEST(SinusoidTasks, ShapesRangesAndParams) {
  md::SinusoidTasks<float> family({.shots = 7, .queries = 3});
  ml::Generator gen(3);
  for (int rep = 0; rep < 50; ++rep) {
    const auto task = family.sample(gen);
    EXPECT_EQ(task.support_x.shape(), (ml::Shape{7, 1}));
    EXPECT_EQ(task.support_y.shape(), (ml::Shape{7, 1}));
    EXPECT_EQ(task.query_x.shape(), (ml::Shape{3, 1}));
    EXPECT_EQ(task.query_y.shape(), (ml::Shape{3, 1}));
    EXPECT_EQ(task.ways, 1);
    EXPECT_EQ(task.shots, 7);
    EXPECT_EQ(task.queries, 3);
    const double a = task.param("amplitude");
    const double p = task.param("phase");
    EXPECT_GE(a, 0.1);
    EXPECT_LT(a, 5.0);
    EXPECT_GE(p, 0.0);
    EXPECT_LT(p, std::numbers::pi);
    for (ml::Index i = 0; i < 7; ++i) {
      const double x = task.support_x.data()[i];
      EXPECT_GE(x, -5.0);
      EXPECT_LT(x, 5.0);
      EXPECT_NEAR(task.support_y.data()[i], a * std::sin(x - p), 1e-5);
    }
  }
  EXPECT_THROW((void)family.sample(gen).param("length_scale"), ml::ValueError);
}

TEST(SinusoidTasks, CustomRangesAndValidation) {
  md::SinusoidTasks<double> family({.shots = 5,
                                    .queries = 5,
                                    .amplitude_min = 2.0,
                                    .amplitude_max = 2.0,
                                    .x_min = 0.0,
                                    .x_max = 1.0});
  ml::Generator gen(1);
  const auto task = family.sample(gen);
  EXPECT_EQ(task.param("amplitude"), 2.0);
  for (ml::Index i = 0; i < 5; ++i) {
    EXPECT_GE(task.query_x.data()[i], 0.0);
    EXPECT_LT(task.query_x.data()[i], 1.0);
  }
  EXPECT_THROW(md::SinusoidTasks<float>({.shots = -1}), ml::ValueError);
  EXPECT_THROW(md::SinusoidTasks<float>({.x_min = 1.0, .x_max = 0.0}), ml::ValueError);
}

TEST(SinusoidTasks, SameSeedSameTaskDifferentSeedDifferentTask) {
  md::SinusoidTasks<float> family;
  ml::Generator g1(11);
  ml::Generator g2(11);
  ml::Generator g3(12);
  const auto a = family.sample(g1);
  EXPECT_TRUE(same_task(a, family.sample(g2)));
  EXPECT_FALSE(same_task(a, family.sample(g3)));
}

TEST(GaussianProcessTasks, CountsRangesAndDeterminism) {
  md::GaussianProcessTasks<double> family;
  ml::Generator gen(5);
  bool counts_vary = false;
  ml::Index first_shots = -1;
  for (int rep = 0; rep < 30; ++rep) {
    const auto task = family.sample(gen);
    EXPECT_GE(task.shots, 3);
    EXPECT_LE(task.shots, 50);
    EXPECT_GE(task.queries, 3);
    EXPECT_LE(task.queries, 50);
    EXPECT_EQ(task.support_x.shape(), (ml::Shape{task.shots, 1}));
    EXPECT_EQ(task.query_y.shape(), (ml::Shape{task.queries, 1}));
    EXPECT_EQ(task.param("length_scale"), 0.4);
    EXPECT_EQ(task.param("signal_scale"), 1.0);
    for (ml::Index i = 0; i < task.shots; ++i) {
      EXPECT_GE(task.support_x.data()[i], -2.0);
      EXPECT_LT(task.support_x.data()[i], 2.0);
      EXPECT_TRUE(std::isfinite(task.support_y.data()[i]));
    }
    if (first_shots < 0) first_shots = task.shots;
    counts_vary = counts_vary || task.shots != first_shots;
  }
  EXPECT_TRUE(counts_vary);
  ml::Generator g1(9);
  ml::Generator g2(9);
  EXPECT_TRUE(same_task(family.sample(g1), family.sample(g2)));
}

TEST(GaussianProcessTasks, SampleCovarianceMatchesKernel) {
  // Two points at fixed distance d: the empirical correlation of f(x1), f(x2) over many
  // tasks must approach exp(-d^2 / (2 l^2)) and the variance signal_scale^2.
  const double l = 0.5;
  const double s = 1.5;
  md::GaussianProcessTasks<double> family({.length_scale = l,
                                           .signal_scale = s,
                                           .min_context = 2,
                                           .max_context = 2,
                                           .min_target = 0,
                                           .max_target = 0,
                                           .x_min = 0.0,
                                           .x_max = 1.0});
  ml::Generator gen(2);
  double sxx = 0;
  double sxy = 0;
  double expected_corr_sum = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const auto t = family.sample(gen);
    const double x1 = t.support_x.data()[0];
    const double x2 = t.support_x.data()[1];
    const double f1 = t.support_y.data()[0];
    const double f2 = t.support_y.data()[1];
    sxx += f1 * f1;
    sxy += f1 * f2;
    expected_corr_sum += s * s * std::exp(-(x1 - x2) * (x1 - x2) / (2 * l * l));
  }
  EXPECT_NEAR(sxx / n, s * s, 0.15 * s * s);
  EXPECT_NEAR(sxy / n, expected_corr_sum / n, 0.15 * s * s);
}

// The Matern 5/2 and periodic kernels by their formulas at a few distances, and the
// sample covariance of two points of each family against its kernel.
TEST(GaussianProcessTasks, MaternAndPeriodicKernels) {
  const double l = 0.7, s = 1.3, p = 1.5;
  for (const double d : {0.0, 0.3, 1.1, 2.5}) {
    const double r = std::sqrt(5.0) * d / l;
    EXPECT_NEAR(md::gp_kernel_value(md::GpKernel::kMatern52, d, l, s, p),
                s * s * (1 + r + r * r / 3) * std::exp(-r), 1e-15);
    const double sn = std::sin(std::numbers::pi * d / p);
    EXPECT_NEAR(md::gp_kernel_value(md::GpKernel::kPeriodic, d, l, s, p),
                s * s * std::exp(-2 * sn * sn / (l * l)), 1e-15);
    EXPECT_NEAR(md::gp_kernel_value(md::GpKernel::kEq, d, l, s, p),
                s * s * std::exp(-d * d / (2 * l * l)), 1e-15);
  }
  // The periodic kernel repeats with the period.
  EXPECT_NEAR(md::gp_kernel_value(md::GpKernel::kPeriodic, 0.4 + p, l, s, p),
              md::gp_kernel_value(md::GpKernel::kPeriodic, 0.4, l, s, p), 1e-12);
  for (const md::GpKernel kernel : {md::GpKernel::kMatern52, md::GpKernel::kPeriodic}) {
    md::GaussianProcessTasks<double> family({.kernel = kernel,
                                             .length_scale = l,
                                             .signal_scale = s,
                                             .period = p,
                                             .min_context = 2,
                                             .max_context = 2,
                                             .min_target = 0,
                                             .max_target = 0,
                                             .x_min = 0.0,
                                             .x_max = 2.0});
    ml::Generator gen(3);
    double sxx = 0, sxy = 0, expected = 0;
    const int n = 4000;
    for (int i = 0; i < n; ++i) {
      const auto t = family.sample(gen);
      const double x1 = t.support_x.data()[0], x2 = t.support_x.data()[1];
      sxx += t.support_y.data()[0] * t.support_y.data()[0];
      sxy += t.support_y.data()[0] * t.support_y.data()[1];
      expected += md::gp_kernel_value(kernel, std::abs(x1 - x2), l, s, p);
    }
    EXPECT_NEAR(sxx / n, s * s, 0.15 * s * s) << static_cast<int>(kernel);
    EXPECT_NEAR(sxy / n, expected / n, 0.15 * s * s) << static_cast<int>(kernel);
  }
}

// Kernel parameters drawn per task (the ANP protocol): within their ranges, different
// from task to task, recorded in the task's params, and used by the oracle (which then
// equals a fixed family's with the task's parameters). A fixed family draws nothing for
// them, so its tasks are unchanged by the option's existence (the first task of seed 9
// is pinned to the draws the sampler made before it).
TEST(GaussianProcessTasks, KernelParametersDrawnPerTask) {
  const md::GaussianProcessOptions random{.length_scale = 0.1,
                                          .signal_scale = 0.1,
                                          .length_scale_max = 0.6,
                                          .signal_scale_max = 1.0,
                                          .noise_std = 0.02,
                                          .targets_include_context = true};
  md::GaussianProcessTasks<double> family(random);
  ml::Generator gen(11);
  double lo = 1, hi = 0;
  for (int rep = 0; rep < 40; ++rep) {
    const auto t = family.sample(gen);
    const double l = t.param("length_scale"), s = t.param("signal_scale");
    EXPECT_GE(l, 0.1);
    EXPECT_LT(l, 0.6);
    EXPECT_GE(s, 0.1);
    EXPECT_LT(s, 1.0);
    lo = std::min(lo, l);
    hi = std::max(hi, l);
    if (rep < 5) {
      md::GaussianProcessOptions fixed = random;
      fixed.length_scale = l;
      fixed.signal_scale = s;
      fixed.length_scale_max = fixed.signal_scale_max = 0.0;
      md::Task<double> bare = t;
      bare.params.clear();
      EXPECT_EQ(family.oracle_log_likelihood(t),
                md::GaussianProcessTasks<double>(fixed).oracle_log_likelihood(bare));
    }
  }
  EXPECT_GT(hi - lo, 0.3);

  // A fixed family's draws: the counts, then the inputs, then the normals.
  md::GaussianProcessTasks<double> fixed({.min_context = 2,
                                          .max_context = 2,
                                          .min_target = 1,
                                          .max_target = 1,
                                          .x_min = 0.0,
                                          .x_max = 1.0});
  ml::Generator a(9), b(9);
  const auto t = fixed.sample(a);
  (void)b.randint(2, 2);
  (void)b.randint(1, 1);
  EXPECT_EQ(t.support_x.data()[0], b.uniform(0.0, 1.0));
  EXPECT_EQ(t.support_x.data()[1], b.uniform(0.0, 1.0));
  EXPECT_EQ(t.query_x.data()[0], b.uniform(0.0, 1.0));

  EXPECT_THROW(md::GaussianProcessTasks<float>({.length_scale = 0.5, .length_scale_max = 0.2}),
               ml::ValueError);
  EXPECT_THROW(md::GaussianProcessTasks<float>({.signal_scale = 0.5, .signal_scale_max = 0.2}),
               ml::ValueError);
  EXPECT_THROW(md::GaussianProcessTasks<float>({.period = 0.0}), ml::ValueError);
}

TEST(GaussianProcessTasks, TargetsIncludeContextAndValidation) {
  md::GaussianProcessTasks<float> family({.targets_include_context = true});
  ml::Generator gen(4);
  const auto t = family.sample(gen);
  ASSERT_GE(t.queries, t.shots);
  for (ml::Index i = 0; i < t.shots; ++i) {
    EXPECT_EQ(t.query_x.data()[i], t.support_x.data()[i]);
    EXPECT_EQ(t.query_y.data()[i], t.support_y.data()[i]);
  }
  EXPECT_THROW(md::GaussianProcessTasks<float>({.length_scale = 0.0}), ml::ValueError);
  EXPECT_THROW(md::GaussianProcessTasks<float>({.min_context = 10, .max_context = 5}),
               ml::ValueError);
}

TEST(AnyTaskSampler, ErasesAndMatchesTheWrappedSampler) {
  md::SinusoidTasks<float> family({.shots = 4});
  md::AnyTaskSampler<float> any = family;
  ml::Generator g1(8);
  ml::Generator g2(8);
  EXPECT_TRUE(same_task(any.sample(g1), family.sample(g2)));
  md::AnyTaskSampler<float> empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_THROW((void)empty.sample(g1), ml::ValueError);
  static_assert(md::TaskSampler<md::AnyTaskSampler<float>>);
  static_assert(!md::TaskSampler<int>);
}

TEST(MetaBatchSampler, DeterministicPerSeedAndSplit) {
  md::SinusoidTasks<float> family({.shots = 5, .queries = 5});
  md::MetaBatchSampler a(family, {.batch = 4, .seed = 1});
  md::MetaBatchSampler b(family, {.batch = 4, .seed = 1});
  md::MetaBatchSampler c(family, {.batch = 4, .seed = 2});
  md::MetaBatchSampler d(family, {.batch = 4, .seed = 1, .split = md::Split::kTest});
  static_assert(std::is_same_v<decltype(a), md::MetaBatchSampler<float>>);
  for (int step = 0; step < 3; ++step) {
    const auto ba = a.next();
    ASSERT_EQ(ba.size(), 4u);
    EXPECT_TRUE(same_batch(ba, b.next()));
    EXPECT_FALSE(same_batch(ba, c.next()));
    EXPECT_FALSE(same_batch(ba, d.next()));
  }
  EXPECT_EQ(a.position(), 3u);
  // Tasks within a batch and across batches differ.
  const auto b0 = a.batch_at(0);
  EXPECT_FALSE(same_task(b0[0], b0[1]));
  EXPECT_FALSE(same_task(b0[0], a.batch_at(1)[0]));
  // Task i of the run is drawn from derive_seed({seed, split, i}).
  ml::Generator g(a.task_seed(4 * 2 + 3));
  EXPECT_TRUE(same_task(a.batch_at(2)[3], family.sample(g)));
}

TEST(MetaBatchSampler, OneAndTwoThreadsGiveBitwiseEqualTasks) {
  md::ProceduralGlyphs glyphs({.train_classes = 50, .test_classes = 10});
  md::EpisodicSampler<float> episodes(glyphs, {.ways = 5, .shots = 2, .queries = 3});
  md::MetaBatchSampler serial(episodes, {.batch = 6, .seed = 3, .threads = 1});
  md::MetaBatchSampler parallel(episodes, {.batch = 6, .seed = 3, .threads = 2});
  md::MetaBatchSampler wide(episodes, {.batch = 6, .seed = 3, .threads = 4});
  for (int step = 0; step < 3; ++step) {
    const auto s = serial.next();
    EXPECT_TRUE(same_batch(s, parallel.next()));
    EXPECT_TRUE(same_batch(s, wide.next()));
  }
  md::GaussianProcessTasks<double> gp;
  md::MetaBatchSampler gs(gp, {.batch = 5, .seed = 9, .threads = 1});
  md::MetaBatchSampler gpar(gp, {.batch = 5, .seed = 9, .threads = 2});
  EXPECT_TRUE(same_batch(gs.next(), gpar.next()));
}

TEST(MetaBatchSampler, PrefetcherReturnsTheSameBatches) {
  md::SinusoidTasks<double> family({.shots = 3, .queries = 2});
  md::MetaBatchSampler plain(family, {.batch = 3, .seed = 5});
  md::MetaBatchSampler ahead(family, {.batch = 3, .seed = 5, .threads = 2, .prefetch = 2});
  for (int step = 0; step < 10; ++step) {
    EXPECT_TRUE(same_batch(plain.next(), ahead.next())) << "batch " << step;
  }
  EXPECT_EQ(ahead.position(), 10u);
}

TEST(MetaBatchSampler, ResumeFromSavedPosition) {
  md::SinusoidTasks<float> family;
  md::MetaBatchSampler run(family, {.batch = 2, .seed = 7, .prefetch = 3});
  for (int i = 0; i < 5; ++i) (void)run.next();
  const std::uint64_t saved = run.position();
  const auto expected6 = run.next();
  const auto expected7 = run.next();

  md::MetaBatchSampler resumed(family, {.batch = 2, .seed = 7});
  resumed.set_position(saved);
  EXPECT_TRUE(same_batch(resumed.next(), expected6));
  EXPECT_TRUE(same_batch(resumed.next(), expected7));

  // Seeking a prefetching sampler backwards discards the prepared batches.
  run.set_position(saved);
  EXPECT_TRUE(same_batch(run.next(), expected6));
  // A moved-from sampler's successor continues the stream.
  md::MetaBatchSampler moved = std::move(run);
  EXPECT_TRUE(same_batch(moved.next(), expected7));
}

TEST(MetaBatchSampler, SamplingErrorsPropagateAndOptionsAreValidated) {
  md::SinusoidTasks<float> family;
  EXPECT_THROW(md::MetaBatchSampler(family, {.batch = 0}), ml::ValueError);
  EXPECT_THROW(md::MetaBatchSampler(family, {.threads = 0}), ml::ValueError);
  EXPECT_THROW(md::MetaBatchSampler(family, {.prefetch = -1}), ml::ValueError);

  struct Failing {
    md::Task<float> sample(ml::Generator& gen) const {
      if (gen.uniform() < 2.0) throw ml::ValueError("Failing::sample: always");
      return {};
    }
  };
  md::MetaBatchSampler bad(Failing{}, {.batch = 3, .threads = 2, .prefetch = 1});
  EXPECT_THROW((void)bad.next(), ml::ValueError);
}

// The GP oracle: with one context point, the posterior mean and variance by hand; with
// none, the prior marginal; and on average over tasks it beats a model that ignores the
// context (the prior), as the exact predictive must.
TEST(GaussianProcessOracle, MatchesTheClosedFormAndBeatsThePrior) {
  const ml::data::GaussianProcessOptions o{
      .length_scale = 0.5, .signal_scale = 1.5, .noise_std = 0.1, .jitter = 0.0};
  ml::data::GaussianProcessTasks<double> gp(o);
  ml::data::Task<double> task;
  task.support_x = ml::from_vector<double>({0.2}, ml::Shape{1, 1});
  task.support_y = ml::from_vector<double>({1.1}, ml::Shape{1, 1});
  task.query_x = ml::from_vector<double>({0.5, -1.0}, ml::Shape{2, 1});
  task.query_y = ml::from_vector<double>({0.7, -0.4}, ml::Shape{2, 1});
  const double s2 = 2.25, n2 = 0.01;
  double expected = 0.0;
  for (int t = 0; t < 2; ++t) {
    const double x = task.query_x.data()[t];
    const double k = s2 * std::exp(-(x - 0.2) * (x - 0.2) / (2 * 0.25));
    const double mean = k / (s2 + n2) * 1.1;
    const double var = s2 - k * k / (s2 + n2) + n2;
    const double r = task.query_y.data()[t] - mean;
    expected += -0.5 * std::log(2 * std::numbers::pi * var) - 0.5 * r * r / var;
  }
  EXPECT_NEAR(gp.oracle_log_likelihood(task), expected / 2, 1e-12);

  ml::data::Task<double> no_context = task;
  no_context.support_x = ml::zeros<double>({0, 1});
  no_context.support_y = ml::zeros<double>({0, 1});
  double prior = 0.0;
  for (int t = 0; t < 2; ++t) {
    const double y = task.query_y.data()[t];
    prior += -0.5 * std::log(2 * std::numbers::pi * (s2 + n2)) - 0.5 * y * y / (s2 + n2);
  }
  EXPECT_NEAR(gp.oracle_log_likelihood(no_context), prior / 2, 1e-12);

  ml::Generator gen(3);
  double with = 0.0, without = 0.0;
  for (int i = 0; i < 200; ++i) {
    auto t = gp.sample(gen);
    with += gp.oracle_log_likelihood(t);
    t.support_x = ml::zeros<double>({0, 1});
    t.support_y = ml::zeros<double>({0, 1});
    without += gp.oracle_log_likelihood(t);
  }
  EXPECT_GT(with / 200, without / 200 + 0.2);
  task.query_x = ml::zeros<double>({0, 1});
  EXPECT_THROW((void)gp.oracle_log_likelihood(task), ml::ShapeError);
}

// query_part: the context points and the further targets of a task whose query set
// begins with its support set; QueryPartTasks draws the same tasks as its family.
TEST(QueryPart, SplitsTheQuerySetAtTheContext) {
  md::GaussianProcessTasks<double> family({.targets_include_context = true});
  ml::Generator gen(6);
  const auto task = family.sample(gen);
  const auto context = md::query_part(task, md::QueryPart::kContext);
  const auto beyond = md::query_part(task, md::QueryPart::kNewTargets);
  ASSERT_EQ(context.queries, task.shots);
  ASSERT_EQ(beyond.queries, task.queries - task.shots);
  ASSERT_EQ(context.query_x.shape(), task.support_x.shape());
  for (ml::Index i = 0; i < task.shots; ++i) {
    EXPECT_EQ(context.query_y.data()[i], task.support_y.data()[i]);
  }
  for (ml::Index i = 0; i < beyond.queries; ++i) {
    EXPECT_EQ(beyond.query_x.data()[i], task.query_x.data()[task.shots + i]);
    EXPECT_EQ(beyond.query_y.data()[i], task.query_y.data()[task.shots + i]);
  }
  EXPECT_EQ(beyond.support_x.data(), task.support_x.data());  // the context is shared

  const md::QueryPartTasks<double> parts(family, md::QueryPart::kNewTargets);
  ml::Generator a(8), b(8);
  const auto whole = family.sample(a);
  const auto part = parts.sample(b);
  EXPECT_EQ(part.query_x.data()[0], whole.query_x.data()[whole.shots]);

  // A query set that does not begin with the support set, and an empty part.
  md::GaussianProcessTasks<double> apart;  // targets_include_context off
  ml::Generator c(1);
  EXPECT_THROW((void)md::query_part(apart.sample(c), md::QueryPart::kContext), ml::ShapeError);
  md::Task<double> only_context = md::query_part(task, md::QueryPart::kContext);
  EXPECT_THROW((void)md::query_part(only_context, md::QueryPart::kNewTargets), ml::ShapeError);
}

// The oracle's predictive: with noise ~0 it interpolates the context, far from the
// context it returns to the prior (mean 0, variance s^2 + noise^2), and its
// log-density at the query points is oracle_log_likelihood().
TEST(GaussianProcessOracle, PredictiveInterpolatesAndMatchesTheLikelihood) {
  md::GaussianProcessTasks<double> exact(
      {.kernel = md::GpKernel::kMatern52, .signal_scale = 1.2, .noise_std = 1e-4});
  ml::Generator gen(4);
  const auto task = exact.sample(gen);
  std::vector<double> x(task.support_x.data(), task.support_x.data() + task.shots);
  x.push_back(50.0);
  const auto p = exact.oracle_predictive(task, x);
  for (ml::Index i = 0; i < task.shots; ++i) {
    EXPECT_NEAR(p.mean[static_cast<std::size_t>(i)], task.support_y.data()[i], 1e-3);
  }
  EXPECT_NEAR(p.mean.back(), 0.0, 1e-9);
  EXPECT_NEAR(p.variance.back(), 1.44 + 1e-8, 1e-6);

  const std::vector<double> q(task.query_x.data(), task.query_x.data() + task.queries);
  const auto pq = exact.oracle_predictive(task, q);
  double total = 0.0;
  for (std::size_t i = 0; i < q.size(); ++i) {
    const double r = task.query_y.data()[i] - pq.mean[i];
    total += -0.5 * std::log(2 * std::numbers::pi * pq.variance[i]) - 0.5 * r * r / pq.variance[i];
  }
  EXPECT_DOUBLE_EQ(exact.oracle_log_likelihood(task), total / static_cast<double>(q.size()));
}
