// LSTMCell against a scalar step-by-step reference (one unit, two steps), its fast
// weights, and its errors.
#include <gtest/gtest.h>

#include <cmath>
#include <metalearn/metalearn.hpp>
#include <vector>

namespace ml = metalearn;
namespace nn = metalearn::nn;

namespace {

double sigmoid(double v) {
  return 1.0 / (1.0 + std::exp(-v));
}

TEST(LSTMCell, TwoStepsEqualAScalarReference) {
  ml::Generator gen(1);
  nn::LSTMCell<double> cell(1, 1, gen);
  // Gates i, f, g, o: weights and biases chosen by hand.
  const std::vector<double> w_ih = {0.5, -0.3, 0.8, 0.1};
  const std::vector<double> w_hh = {-0.2, 0.4, 0.6, -0.7};
  const std::vector<double> b_ih = {0.1, 0.2, -0.1, 0.05};
  const std::vector<double> b_hh = {0.0, 0.3, 0.2, -0.15};
  nn::ParamDict<double> p;
  p.insert("weight_ih", ml::from_vector<double>(w_ih, {4, 1}));
  p.insert("weight_hh", ml::from_vector<double>(w_hh, {4, 1}));
  p.insert("bias_ih", ml::from_vector<double>(b_ih));
  p.insert("bias_hh", ml::from_vector<double>(b_hh));
  cell.load_parameters(p);

  const double xs[2] = {1.5, -0.7};
  double h = 0.25, c = -0.4;
  auto state = nn::LSTMCell<double>::State{ml::from_vector<double>({h}, {1, 1}),
                                           ml::from_vector<double>({c}, {1, 1})};
  for (const double x : xs) {
    double g[4];
    for (int k = 0; k < 4; ++k) g[k] = w_ih[k] * x + b_ih[k] + w_hh[k] * h + b_hh[k];
    c = sigmoid(g[1]) * c + sigmoid(g[0]) * std::tanh(g[2]);
    h = sigmoid(g[3]) * std::tanh(c);
    state = cell.step(ml::from_vector<double>({x}, {1, 1}), state);
    EXPECT_NEAR(state.c.item(), c, 1e-15);
    EXPECT_NEAR(state.h.item(), h, 1e-15);
  }
}

TEST(LSTMCell, StepsOnFastWeightsAndFromTheZeroState) {
  ml::Generator gen(2);
  nn::LSTMCell<double> cell(3, 5, gen);
  EXPECT_EQ(cell.named_parameters().size(), 4U);
  EXPECT_EQ(cell.named_parameters().at("weight_ih").shape(), ml::Shape({20, 3}));
  const auto x = ml::randn<double>({2, 3}, gen);
  const auto h = cell.forward(x);
  const auto from_zero = cell.step(x, cell.zero_state(2));
  EXPECT_EQ(h.shape(), ml::Shape({2, 5}));
  for (ml::Index i = 0; i < h.numel(); ++i) EXPECT_EQ(h.data()[i], from_zero.h.data()[i]);
  // Fast weights: all-zero weights and biases give gates of 0: c' = c / 2, h' = 0.
  auto zero = cell.named_parameters();
  std::vector<ml::Tensor<double>> zeros;
  for (const auto& t : zero.values()) zeros.push_back(ml::zeros<double>(t.shape()));
  const auto c = ml::randn<double>({2, 5}, gen);
  const auto next = cell.step(x, {ml::zeros<double>({2, 5}), c}, zero.with_values(zeros));
  for (ml::Index i = 0; i < c.numel(); ++i) {
    EXPECT_NEAR(next.c.data()[i], 0.5 * c.data()[i], 1e-15);
    EXPECT_NEAR(next.h.data()[i], 0.5 * std::tanh(0.5 * c.data()[i]), 1e-15);
  }
}

TEST(LSTMCell, RejectsMismatchedShapes) {
  ml::Generator gen(3);
  nn::LSTMCell<double> cell(3, 4, gen);
  EXPECT_THROW(nn::LSTMCell<double>(0, 4, gen), ml::ValueError);
  EXPECT_THROW((void)cell.forward(ml::randn<double>({2, 3, 1}, gen)), ml::ShapeError);
  EXPECT_THROW((void)cell.step(ml::randn<double>({2, 3}, gen), cell.zero_state(3)), ml::ShapeError);
  EXPECT_THROW((void)cell.step(ml::randn<double>({2, 3}, gen),
                               {ml::zeros<double>({2, 4}), ml::zeros<double>({2, 5})}),
               ml::ShapeError);
}

}  // namespace
