// MAML-shaped second order: the gradient of a query loss after k differentiable
// SGD steps on a support loss, checked against finite differences of the whole map.

#include <gtest/gtest.h>

#include <vector>

#include "metalearn/autograd.hpp"
#include "metalearn/tensor.hpp"
#include "support/gradients.hpp"
#include "support/tensor_assertions.hpp"

namespace ml = metalearn;
namespace mt = metalearn::testing;
namespace ag = metalearn::autograd;
using TD = ml::Tensor<double>;
using Args = std::vector<TD>;

namespace {

/// A 1-4-1 tanh MLP: params = {w1 [1, 4], b1 [4], w2 [4, 1], b2 [1]}.
TD mlp(const Args& p, const TD& x) {
  return ml::add(ml::matmul(ml::tanh(ml::add(ml::matmul(x, p[0]), p[1])), p[2]), p[3]);
}

struct RegressionTask {
  TD support_x, support_y, query_x, query_y;
};

RegressionTask make_task() {
  ml::Generator gen(17);
  RegressionTask t;
  t.support_x = ml::uniform<double>({5, 1}, gen, -2.0, 2.0);
  t.support_y = ml::mul_scalar(ml::tanh(ml::mul_scalar(t.support_x, 1.3)), 0.8);
  t.query_x = ml::uniform<double>({6, 1}, gen, -2.0, 2.0);
  t.query_y = ml::mul_scalar(ml::tanh(ml::mul_scalar(t.query_x, 1.3)), 0.8);
  return t;
}

/// The meta-objective: query loss after `steps` SGD steps on the support loss,
/// as a function of the initial parameters. With second_order = false the inner
/// gradients are constants (first-order MAML).
ag::DifferentiableFunction meta_objective(RegressionTask task, int steps, double lr,
                                          bool second_order) {
  return [task, steps, lr, second_order](const Args& params) {
    // The inner loop always needs gradients, also while gradcheck evaluates the
    // map under NoGradGuard for its finite differences.
    ag::EnableGradGuard enable;
    Args w = params;
    for (int s = 0; s < steps; ++s) {
      TD inner = ml::mse_loss(mlp(w, task.support_x), task.support_y);
      Args g = ag::grad({inner}, w, {.create_graph = second_order});
      for (std::size_t i = 0; i < w.size(); ++i) w[i] = ml::sub(w[i], ml::mul_scalar(g[i], lr));
    }
    return ml::mse_loss(mlp(w, task.query_x), task.query_y);
  };
}

Args initial_params(std::uint64_t seed) {
  return mt::random_inputs({{1, 4}, {4}, {4, 1}, {1}}, -1.0, 1.0, seed);
}

}  // namespace

class MamlMetaGradient : public ::testing::TestWithParam<int> {};

TEST_P(MamlMetaGradient, MatchesFiniteDifferencesOfTheWholeMap) {
  const int steps = GetParam();
  auto f = meta_objective(make_task(), steps, 0.3, true);
  const auto r = ag::gradcheck(f, initial_params(5));
  EXPECT_TRUE(r.ok) << r.message;
}

TEST_P(MamlMetaGradient, FirstOrderApproximationDiffers) {
  // The Hessian term matters: dropping it must be detected by the same check.
  const int steps = GetParam();
  auto f = meta_objective(make_task(), steps, 0.3, false);
  const auto r = ag::gradcheck(f, initial_params(5));
  EXPECT_FALSE(r.ok);
}

INSTANTIATE_TEST_SUITE_P(InnerSteps, MamlMetaGradient, ::testing::Values(1, 2, 3));

TEST(Maml, OneStepMetaGradientOfLinearModelMatchesClosedForm) {
  // Model y = w x, support loss Ls = mean((w xs - ys)^2), query loss Lq likewise.
  // w' = w - lr * dLs/dw = w - lr * 2 mean(xs (w xs - ys)) = w (1 - 2 lr a) + 2 lr b,
  // with a = mean(xs^2), b = mean(xs ys). dLq/dw = dLq/dw' * (1 - 2 lr a),
  // dLq/dw' = 2 mean(xq (w' xq - yq)).
  const std::vector<double> xs{1, 2, -1}, ys{2, 3, -1}, xq{0.5, -2}, yq{1, -3};
  const double lr = 0.05;
  const double w0 = 0.4;
  auto mean = [](const std::vector<double>& u, const std::vector<double>& v) {
    double s = 0;
    for (std::size_t i = 0; i < u.size(); ++i) s += u[i] * v[i];
    return s / static_cast<double>(u.size());
  };
  const double a = mean(xs, xs);
  const double b = mean(xs, ys);
  const double w1 = w0 * (1 - 2 * lr * a) + 2 * lr * b;
  const double dq = 2 * (w1 * mean(xq, xq) - mean(xq, yq));
  const double expected = dq * (1 - 2 * lr * a);

  auto w = ml::scalar<double>(w0).requires_grad(true);
  auto sx = ml::from_vector<double>(xs);
  auto sy = ml::from_vector<double>(ys);
  auto qx = ml::from_vector<double>(xq);
  auto qy = ml::from_vector<double>(yq);
  auto ls = ml::mse_loss(ml::mul(w, sx), sy);
  auto g = ag::grad({ls}, {w}, {.create_graph = true})[0];
  auto w_adapted = ml::sub(w, ml::mul_scalar(g, lr));
  EXPECT_NEAR(w_adapted.item(), w1, 1e-14);
  auto lq = ml::mse_loss(ml::mul(w_adapted, qx), qy);
  auto meta = ag::grad({lq}, {w})[0];
  EXPECT_NEAR(meta.item(), expected, 1e-13);
}
