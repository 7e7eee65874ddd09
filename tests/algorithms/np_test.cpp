// Latent Neural Process: the ELBO's meta-gradient against central differences at fixed
// noise, a zero KL term when the targets are the context, the Monte Carlo likelihood
// against a hand computation, learning on Gaussian-process tasks, and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <metalearn/metalearn.hpp>
#include <numbers>
#include <vector>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;

namespace {

alg::NpOptions small_options() {
  return alg::NpOptions{.deterministic = {5, 4},
                        .latent_encoder = {5, 4},
                        .latent = 3,
                        .decoder = {6},
                        .lr = 1e-3,
                        .likelihood_samples = 8};
}

template <class T>
ml::data::TaskBatch<T> gp_batch(std::uint64_t seed, int tasks) {
  ml::data::GaussianProcessTasks<T> gp({.min_context = 2,
                                        .max_context = 6,
                                        .min_target = 2,
                                        .max_target = 6,
                                        .targets_include_context = true});
  ml::Generator gen(seed);
  ml::data::TaskBatch<T> batch;
  for (int i = 0; i < tasks; ++i) batch.push_back(gp.sample(gen));
  return batch;
}

double log_density_sum(const ml::Tensor<double>& y, const alg::GaussianPrediction<double>& p) {
  double s = 0.0;
  for (ml::Index i = 0; i < y.numel(); ++i) {
    const double mu = p.mean.data()[i];
    const double sigma = p.stddev.data()[i];
    s += -std::log(sigma) - 0.5 * std::log(2 * std::numbers::pi) -
         0.5 * (y.data()[i] - mu) * (y.data()[i] - mu) / (sigma * sigma);
  }
  return s;
}

TEST(NeuralProcess, ElboGradientMatchesCentralDifferencesAtFixedNoise) {
  ml::Generator gen(1);
  alg::NeuralProcess<double> np(1, 1, gen, small_options());
  const auto batch = gp_batch<double>(2, 2);
  ml::Generator noise(3);
  std::vector<ml::Tensor<double>> eps;
  for (std::size_t i = 0; i < batch.size(); ++i) eps.push_back(ml::randn<double>({1, 3}, noise));
  const auto params = np.meta_parameters();
  const auto loss = [&] {
    double total = 0.0;
    for (std::size_t i = 0; i < batch.size(); ++i)
      total += np.loss(batch[i], params, eps[i]).item();
    return total;
  };
  std::vector<ml::Tensor<double>> analytic;
  {
    ml::Tensor<double> total = np.loss(batch[0], params, eps[0]);
    for (std::size_t i = 1; i < batch.size(); ++i)
      total = ml::add(total, np.loss(batch[i], params, eps[i]));
    analytic = ml::autograd::grad({total}, params.values());
  }
  double worst = 0.0;
  const auto values = params.values();
  for (std::size_t j = 0; j < values.size(); ++j) {
    for (ml::Index k = 0; k < values[j].numel(); ++k) {
      double* p = values[j].data() + k;
      const double saved = *p;
      *p = saved + 1e-6;
      const double plus = loss();
      *p = saved - 1e-6;
      const double minus = loss();
      *p = saved;
      const double numeric = (plus - minus) / 2e-6;
      worst =
          std::max(worst, std::abs(numeric - analytic[j].data()[k]) / (1.0 + std::abs(numeric)));
    }
  }
  EXPECT_LT(worst, 1e-7);
  // meta_gradient() is the same sum with its own noise: finite, one entry per parameter.
  const auto g = np.meta_gradient(batch);
  EXPECT_EQ(g.sum.size(), params.size());
  EXPECT_TRUE(std::isfinite(g.stats.meta_loss));
}

alg::NpOptions attentive_options() {
  alg::NpOptions o = small_options();
  o.attention_heads = 2;
  o.attention_mlp = {4};
  o.self_attention = true;
  return o;
}

TEST(NeuralProcess, AttentiveElboGradientMatchesCentralDifferences) {
  ml::Generator gen(21);
  alg::NeuralProcess<double> anp(1, 1, gen, attentive_options());
  const auto params = anp.meta_parameters();
  EXPECT_NE(params.find("cross_attention.q_proj"), nullptr);
  EXPECT_NE(params.find("self_attention.out_proj"), nullptr);
  EXPECT_NE(params.find("attention_mlp.0.weight"), nullptr);
  const auto task = gp_batch<double>(22, 1).front();
  ml::Generator noise(23);
  const auto eps = ml::randn<double>({1, 3}, noise);
  const auto analytic = ml::autograd::grad({anp.loss(task, params, eps)}, params.values());
  const auto values = params.values();
  double worst = 0.0;
  for (std::size_t j = 0; j < values.size(); ++j) {
    for (ml::Index k = 0; k < values[j].numel(); ++k) {
      double* p = values[j].data() + k;
      const double saved = *p;
      *p = saved + 1e-6;
      const double plus = anp.loss(task, params, eps).item();
      *p = saved - 1e-6;
      const double minus = anp.loss(task, params, eps).item();
      *p = saved;
      const double numeric = (plus - minus) / 2e-6;
      worst =
          std::max(worst, std::abs(numeric - analytic[j].data()[k]) / (1.0 + std::abs(numeric)));
    }
  }
  EXPECT_LT(worst, 1e-7);
}

TEST(NeuralProcess, AttentivePredictionsDoNotDependOnTheContextOrder) {
  ml::Generator gen(24);
  alg::NeuralProcess<double> anp(1, 1, gen, attentive_options());
  const auto task = gp_batch<double>(25, 1).front();
  const ml::Index c = task.support_x.shape()[0];
  std::vector<ml::Index> reversed;
  for (ml::Index i = c - 1; i >= 0; --i) reversed.push_back(i);
  ml::data::Task<double> shuffled = task;
  shuffled.support_x = ml::index_select(task.support_x, 0, reversed);
  shuffled.support_y = ml::index_select(task.support_y, 0, reversed);
  const auto a = anp.predict(anp.adapt(task), task.query_x);
  const auto b = anp.predict(anp.adapt(shuffled), task.query_x);
  for (ml::Index i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.data()[i], b.data()[i], 1e-12);
  // Attention replaces the deterministic path's mean, so it needs that path.
  EXPECT_THROW(alg::NeuralProcess<double>(
                   1, 1, gen, alg::NpOptions{.deterministic = {}, .attention_heads = 2}),
               ml::ValueError);
}

TEST(NeuralProcess, WithTheContextAsTargetsTheKlVanishes) {
  ml::Generator gen(4);
  alg::NeuralProcess<double> np(1, 1, gen, small_options());
  auto task = gp_batch<double>(5, 1).front();
  task.query_x = task.support_x;
  task.query_y = task.support_y;
  ml::Generator noise(6);
  const auto eps = ml::randn<double>({1, 3}, noise);
  const auto c = np.adapt(task);
  const auto z = ml::add(c.z_mean, ml::mul(c.z_sigma, eps));
  const auto p = np.predictive(c, z, task.query_x);
  const double m = static_cast<double>(task.query_x.shape()[0]);
  EXPECT_NEAR(np.loss(task, np.meta_parameters(), eps).item(),
              -log_density_sum(task.query_y, p) / m, 1e-12);
  for (ml::Index i = 0; i < c.z_sigma.numel(); ++i) {
    EXPECT_GT(c.z_sigma.data()[i], 0.1);
    EXPECT_LT(c.z_sigma.data()[i], 1.0);
  }
}

TEST(NeuralProcess, MonteCarloLikelihoodIsTheLogMeanOfTheSamplesDensities) {
  ml::Generator gen(7);
  alg::NeuralProcess<double> np(1, 1, gen, small_options());
  const auto task = gp_batch<double>(8, 1).front();
  const auto c = np.adapt(task);
  const int k = 5;
  ml::Generator draws(9);
  std::vector<double> logs;
  for (int i = 0; i < k; ++i) {
    const auto z = ml::add(c.z_mean, ml::mul(c.z_sigma, ml::randn<double>({1, 3}, draws)));
    logs.push_back(log_density_sum(task.query_y, np.predictive(c, z, task.query_x)));
  }
  double top = logs[0];
  for (double v : logs) top = std::max(top, v);
  double acc = 0.0;
  for (double v : logs) acc += std::exp(v - top);
  const double expected = (top + std::log(acc / k)) / static_cast<double>(task.query_x.shape()[0]);
  ml::Generator same(9);
  EXPECT_NEAR(np.log_likelihood(task, k, same), expected, 1e-12);
  // The log of a mean is at least the mean of the logs.
  double mean_log = 0.0;
  for (double v : logs) mean_log += v / k;
  EXPECT_GE(expected, mean_log / static_cast<double>(task.query_x.shape()[0]));
}

TEST(NeuralProcess, MetaTrainingOnGaussianProcessesRaisesTheTargetLikelihood) {
  ml::Generator gen(10);
  alg::NeuralProcess<float> np(1, 1, gen,
                               alg::NpOptions{.deterministic = {32, 32},
                                              .latent_encoder = {32, 32},
                                              .latent = 16,
                                              .decoder = {32},
                                              .lr = 3e-3,
                                              .likelihood_samples = 10,
                                              .seed = 2});
  ml::data::GaussianProcessTasks<float> gp(
      {.max_context = 10, .max_target = 10, .targets_include_context = true});
  ml::data::MetaBatchSampler<float> batches(gp, {.batch = 8, .seed = 3});
  const ml::data::AnyTaskSampler<float> test(gp);
  const auto before = np.evaluate(test, 100);
  for (int s = 0; s < 1000; ++s) (void)np.meta_step(batches.next());
  const auto after = np.evaluate(test, 100);
  EXPECT_GT(after.mean, before.mean + 0.2) << before.mean << " -> " << after.mean;
}

TEST(NeuralProcess, ErrorsNameTheOperationAndShapes) {
  ml::Generator gen(11);
  EXPECT_THROW(alg::NeuralProcess<float>(1, 1, gen, alg::NpOptions{.latent = 0}), ml::ValueError);
  EXPECT_THROW(alg::NeuralProcess<float>(1, 1, gen, alg::NpOptions{.likelihood_samples = 0}),
               ml::ValueError);
  alg::NeuralProcess<float> np(2, 1, gen, small_options());
  const auto task = gp_batch<float>(12, 1).front();
  try {
    (void)np.adapt(task);
    ADD_FAILURE() << "no error";
  } catch (const ml::ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("NeuralProcess::adapt: the context"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW((void)np.meta_step({task}), ml::ShapeError);
  EXPECT_EQ(np.steps_taken(), 0);
}

}  // namespace

// The ELBO on a linear-Gaussian case: with a decoder whose mean is linear in z
// (mu = a z + c; its hidden unit's ReLU never below zero) and whose sigma is constant,
// E_q[log N(y; a z + c, sigma^2)] has a closed form, so the mean of the training loss
// over many posterior draws must converge to (KL(q || p) - sum_j E_q[log p(y_j | z)]) / m
// with q and p the latent path's posterior (encoded from the targets) and prior (from
// the context).
TEST(NeuralProcess, ElboEstimateConvergesToTheClosedFormOnALinearGaussianCase) {
  ml::Generator gen(21);
  alg::NeuralProcess<double> np(1, 1, gen,
                                alg::NpOptions{.deterministic = {},
                                               .latent_encoder = {4},
                                               .latent = 1,
                                               .decoder = {1},
                                               .likelihood_samples = 4});
  const double a = 0.8, c = -0.3, raw = 0.4;
  auto state = np.state();
  int decoder_layers = 0;
  ml::nn::ParamDict<double> set;
  for (const auto& [name, original] : state.parameters) {
    ml::Tensor<double> t = original.clone();
    set.insert(name, t);
    if (name.rfind("decoder.", 0) != 0) continue;
    double* v = t.data();
    if (t.shape() == ml::Shape{1, 2}) {  // hidden = relu(a z + 0 x + 50)
      v[0] = a;
      v[1] = 0.0;
      ++decoder_layers;
    } else if (t.shape() == ml::Shape{1}) {
      v[0] = 50.0;
    } else if (t.shape() == ml::Shape{2, 1}) {  // mu = hidden - 50 + c, raw constant
      v[0] = 1.0;
      v[1] = 0.0;
      ++decoder_layers;
    } else if (t.shape() == ml::Shape{2}) {
      v[0] = c - 50.0;
      v[1] = raw;
    }
  }
  ASSERT_EQ(decoder_layers, 2);
  state.parameters = set;
  np.load_state(state);

  const auto task = gp_batch<double>(22, 1).front();
  auto targets_as_context = task;
  targets_as_context.support_x = task.query_x;
  targets_as_context.support_y = task.query_y;
  const auto prior = np.adapt(task);
  const auto post = np.adapt(targets_as_context);
  const double mp = prior.z_mean.item(), sp = prior.z_sigma.item();
  const double mq = post.z_mean.item(), sq = post.z_sigma.item();
  const double sigma = 0.1 + 0.9 * std::log1p(std::exp(raw));
  const double kl = std::log(sp / sq) + (sq * sq + (mq - mp) * (mq - mp)) / (2 * sp * sp) - 0.5;
  double expected_log_p = 0.0;
  const ml::Index m = task.query_x.shape()[0];
  for (ml::Index j = 0; j < m; ++j) {
    const double r = task.query_y.data()[j] - a * mq - c;
    expected_log_p += -0.5 * std::log(2 * std::numbers::pi * sigma * sigma) -
                      (r * r + a * a * sq * sq) / (2 * sigma * sigma);
  }
  const double closed = (kl - expected_log_p) / static_cast<double>(m);

  ml::Generator noise(23);
  const auto params = np.meta_parameters();
  const int draws = 20000;
  double sum = 0.0, sum2 = 0.0;
  for (int k = 0; k < draws; ++k) {
    const double l = np.loss(task, params, ml::randn<double>({1, 1}, noise)).item();
    sum += l;
    sum2 += l * l;
  }
  const double mean = sum / draws;
  const double se = std::sqrt((sum2 / draws - mean * mean) / draws);
  EXPECT_LT(se, 0.02);
  EXPECT_NEAR(mean, closed, 5 * se) << "standard error " << se;
}
