// Conditional Neural Process: the log-likelihood against a hand computation from the
// predictive distribution, the meta-gradient against central differences, order
// invariance of the context, the standard-deviation floor, learning on Gaussian-process
// tasks, and errors naming the operation and shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <metalearn/metalearn.hpp>
#include <numbers>
#include <vector>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;

namespace {

alg::CnpOptions small_options() {
  return alg::CnpOptions{.encoder = {5, 4}, .decoder = {6}, .lr = 1e-3};
}

template <class T>
ml::data::TaskBatch<T> gp_batch(std::uint64_t seed, int tasks, ml::Index max_points = 6) {
  ml::data::GaussianProcessTasks<T> gp({.min_context = 2,
                                        .max_context = max_points,
                                        .min_target = 2,
                                        .max_target = max_points,
                                        .targets_include_context = true});
  ml::Generator gen(seed);
  ml::data::TaskBatch<T> batch;
  for (int i = 0; i < tasks; ++i) batch.push_back(gp.sample(gen));
  return batch;
}

TEST(Cnp, LogLikelihoodIsTheGaussianDensityOfThePrediction) {
  ml::Generator gen(1);
  alg::ConditionalNeuralProcess<double> cnp(1, 1, gen, small_options());
  const auto task = gp_batch<double>(2, 1).front();
  const auto p = cnp.predictive(cnp.adapt(task), task.query_x);
  double expected = 0.0;
  const ml::Index m = task.query_x.shape()[0];
  for (ml::Index i = 0; i < m; ++i) {
    const double mu = p.mean.data()[i];
    const double sigma = p.stddev.data()[i];
    const double y = task.query_y.data()[i];
    expected += -std::log(sigma) - 0.5 * std::log(2 * std::numbers::pi) -
                0.5 * (y - mu) * (y - mu) / (sigma * sigma);
  }
  expected /= static_cast<double>(m);
  EXPECT_NEAR(cnp.log_likelihood(task, cnp.meta_parameters()).item(), expected, 1e-12);
  // predict() holds the mean, then the standard deviation.
  const auto both = cnp.predict(cnp.adapt(task), task.query_x);
  ASSERT_EQ(both.shape(), (ml::Shape{m, 2}));
  EXPECT_EQ(both.at(0, 0), p.mean.at(0, 0));
  EXPECT_EQ(both.at(0, 1), p.stddev.at(0, 0));
}

TEST(Cnp, MetaGradientMatchesCentralDifferences) {
  ml::Generator gen(3);
  alg::ConditionalNeuralProcess<double> cnp(1, 1, gen, small_options());
  const auto batch = gp_batch<double>(4, 2);
  const auto g = cnp.meta_gradient(batch);
  ASSERT_EQ(g.tasks, 2u);
  const auto mean = g.mean();
  const auto loss = [&] {
    double total = 0.0;
    for (const auto& task : batch) total -= cnp.log_likelihood(task, cnp.meta_parameters()).item();
    return total / static_cast<double>(batch.size());
  };
  const auto params = cnp.meta_parameters().values();
  double worst = 0.0;
  for (std::size_t j = 0; j < params.size(); ++j) {
    for (ml::Index k = 0; k < params[j].numel(); ++k) {
      double* p = params[j].data() + k;
      const double saved = *p;
      const double eps = 1e-6;
      *p = saved + eps;
      const double plus = loss();
      *p = saved - eps;
      const double minus = loss();
      *p = saved;
      const double numeric = (plus - minus) / (2 * eps);
      worst = std::max(worst, std::abs(numeric - mean[j].data()[k]) / (1.0 + std::abs(numeric)));
    }
  }
  EXPECT_LT(worst, 1e-7);
  EXPECT_NEAR(g.stats.meta_loss, loss(), 1e-12);
}

TEST(Cnp, TheContextIsASetAndSigmaKeepsItsFloor) {
  ml::Generator gen(5);
  alg::ConditionalNeuralProcess<double> cnp(1, 1, gen, small_options());
  auto task = gp_batch<double>(6, 1, 8).front();
  const ml::Index c = task.support_x.shape()[0];
  std::vector<ml::Index> reversed;
  for (ml::Index i = c - 1; i >= 0; --i) reversed.push_back(i);
  ml::data::Task<double> shuffled = task;
  shuffled.support_x = ml::index_select(task.support_x, 0, reversed);
  shuffled.support_y = ml::index_select(task.support_y, 0, reversed);
  const auto a = cnp.adapt(task);
  const auto b = cnp.adapt(shuffled);
  for (ml::Index i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.data()[i], b.data()[i], 1e-14);
  // Far from the data the raw output is large and negative for some inputs; sigma stays
  // at or above the floor everywhere.
  const auto far = ml::mul_scalar(ml::randn<double>({50, 1}, gen), 100.0);
  const auto p = cnp.predictive(a, far);
  for (ml::Index i = 0; i < p.stddev.numel(); ++i) EXPECT_GE(p.stddev.data()[i], 0.1);
}

TEST(Cnp, MetaTrainingOnGaussianProcessesRaisesTheTargetLikelihood) {
  ml::Generator gen(7);
  alg::ConditionalNeuralProcess<float> cnp(
      1, 1, gen, alg::CnpOptions{.encoder = {32, 32}, .decoder = {32}, .lr = 3e-3, .seed = 1});
  ml::data::GaussianProcessTasks<float> gp(
      {.max_context = 10, .max_target = 10, .targets_include_context = true});
  ml::data::MetaBatchSampler<float> batches(gp, {.batch = 8, .seed = 2});
  const ml::data::AnyTaskSampler<float> test(gp);
  const auto before = cnp.evaluate(test, 100);
  for (int s = 0; s < 1000; ++s) (void)cnp.meta_step(batches.next());
  const auto after = cnp.evaluate(test, 100);
  EXPECT_GT(after.mean, before.mean + 0.3) << before.mean << " -> " << after.mean;
  EXPECT_EQ(cnp.steps_taken(), 1000);
}

TEST(Cnp, ErrorsNameTheOperationAndShapes) {
  ml::Generator gen(9);
  EXPECT_THROW(alg::ConditionalNeuralProcess<float>(0, 1, gen), ml::ValueError);
  EXPECT_THROW(alg::ConditionalNeuralProcess<float>(1, 1, gen, alg::CnpOptions{.encoder = {}}),
               ml::ValueError);
  EXPECT_THROW(alg::ConditionalNeuralProcess<float>(1, 1, gen, alg::CnpOptions{.sigma_floor = 1.0}),
               ml::ValueError);
  alg::ConditionalNeuralProcess<float> cnp(2, 1, gen, small_options());
  auto task = gp_batch<float>(10, 1).front();  // x in R^1, not R^2
  try {
    (void)cnp.adapt(task);
    ADD_FAILURE() << "no error";
  } catch (const ml::ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("ConditionalNeuralProcess::adapt: the context inputs"),
              std::string::npos)
        << e.what();
  }
  ml::data::Task<float> empty;
  empty.support_x = ml::zeros<float>({0, 2});
  empty.support_y = ml::zeros<float>({0, 1});
  EXPECT_THROW((void)cnp.adapt(empty), ml::ShapeError);
  EXPECT_THROW((void)cnp.meta_step({task}), ml::ShapeError);
  EXPECT_EQ(cnp.steps_taken(), 0);
}

}  // namespace
