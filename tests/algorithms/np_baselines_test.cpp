// The image-completion baselines: k-nearest-neighbour averaging and a GP's posterior
// mean, against hand computations on tiny tasks.
#include <gtest/gtest.h>

#include <cmath>
#include <metalearn/metalearn.hpp>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;

namespace {

ml::data::Task<double> line_task() {
  ml::data::Task<double> t;
  // Context at x = 0, 1, 3 with targets 0, 10, 30; targets at 0.4, 2.1, 5.
  t.support_x = ml::from_vector<double>({0, 1, 3}, ml::Shape{3, 1});
  t.support_y = ml::from_vector<double>({0, 10, 30}, ml::Shape{3, 1});
  t.query_x = ml::from_vector<double>({0.4, 2.1, 5}, ml::Shape{3, 1});
  t.query_y = ml::from_vector<double>({4, 21, 50}, ml::Shape{3, 1});
  return t;
}

}  // namespace

TEST(NpBaselines, NearestNeighbours) {
  const auto t = line_task();
  const auto one = alg::knn_regression(t, 1);
  EXPECT_EQ(one.data()[0], 0.0);   // 0.4 is nearest 0
  EXPECT_EQ(one.data()[1], 30.0);  // 2.1 is nearest 3
  EXPECT_EQ(one.data()[2], 30.0);
  const auto two = alg::knn_regression(t, 2);
  EXPECT_EQ(two.data()[0], 5.0);                // 0 and 1
  EXPECT_EQ(two.data()[1], 20.0);               // 3 (0.9) and 1 (1.1)
  const auto all = alg::knn_regression(t, 10);  // capped at the context size
  EXPECT_DOUBLE_EQ(all.data()[2], 40.0 / 3.0);
  EXPECT_DOUBLE_EQ(alg::mean_squared_error(t, one), (16.0 + 81.0 + 400.0) / 3.0);
  EXPECT_THROW((void)alg::knn_regression(t, 0), ml::ValueError);
  auto empty = t;
  empty.support_x = ml::zeros<double>({0, 1});
  empty.support_y = ml::zeros<double>({0, 1});
  EXPECT_THROW((void)alg::knn_regression(empty, 1), ml::ShapeError);
}

TEST(NpBaselines, GaussianProcessMean) {
  // One context point: the mean is k(x, x0) / (k(x0, x0) + noise^2) * y0.
  ml::data::Task<double> t;
  t.support_x = ml::from_vector<double>({0.5, -0.5}, ml::Shape{1, 2});
  t.support_y = ml::from_vector<double>({2.0}, ml::Shape{1, 1});
  t.query_x = ml::from_vector<double>({0.5, -0.5, 1.0, 0.0}, ml::Shape{2, 2});
  t.query_y = ml::zeros<double>({2, 1});
  const double l = 0.7, s = 1.3, noise = 0.2;
  const auto mean = alg::gp_regression_mean(t, l, s, noise);
  const double s2 = s * s, denom = s2 + noise * noise + 1e-9 * s2;
  EXPECT_NEAR(mean.data()[0], s2 / denom * 2.0, 1e-12);
  const double d2 = 0.25 + 0.25;
  EXPECT_NEAR(mean.data()[1], s2 * std::exp(-d2 / (2 * l * l)) / denom * 2.0, 1e-12);
  // Without noise it interpolates the context.
  const auto line = line_task();
  const auto exact = alg::gp_regression_mean(line, 1.0, 20.0, 0.0);
  ml::data::Task<double> at_context = line;
  at_context.query_x = line.support_x;
  const auto back = alg::gp_regression_mean(at_context, 1.0, 20.0, 0.0);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(back.data()[i], line.support_y.data()[i], 1e-4);
  EXPECT_EQ(exact.shape(), (ml::Shape{3, 1}));
  EXPECT_THROW((void)alg::gp_regression_mean(line, 0.0, 1.0, 0.1), ml::ValueError);
}
