// gradcheck / gradgradcheck themselves: they pass correct rules and catch wrong ones.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "metalearn/autograd.hpp"
#include "metalearn/tensor.hpp"
#include "support/gradients.hpp"

namespace ml = metalearn;
namespace mt = metalearn::testing;
namespace ag = metalearn::autograd;
using TD = ml::Tensor<double>;
using Args = std::vector<TD>;

namespace {

/// x^2 with a backward rule scaled by `factor` (1 is correct).
TD scaled_square(const TD& a, double factor) {
  TD out = ml::detail::map_unary(a, [](double x) { return x * x; });
  ml::detail::record(out, "scaled_square", {&a}, [a, factor](ml::Node<double>&, const TD& g) {
    return std::vector<TD>{ml::mul(g, ml::mul_scalar(a, 2 * factor))};
  });
  return out;
}

/// x^2 whose backward rule is right to first order but treats 2x as a constant,
/// so its second derivative is wrong (zero instead of 2).
TD square_constant_backward(const TD& a) {
  TD out = ml::detail::map_unary(a, [](double x) { return x * x; });
  ml::detail::record(out, "square_constant_backward", {&a}, [a](ml::Node<double>&, const TD& g) {
    return std::vector<TD>{ml::mul(g, ml::mul_scalar(a.detach(), 2.0))};
  });
  return out;
}

}  // namespace

TEST(Gradcheck, AcceptsCorrectRules) {
  const auto in = mt::random_inputs({{2, 3}}, -1, 1, 3);
  auto f = [](const Args& v) { return scaled_square(v[0], 1.0); };
  const auto r1 = ag::gradcheck(f, in);
  EXPECT_TRUE(r1.ok) << r1.message;
  EXPECT_LT(r1.max_abs_error, 1e-8);
  const auto r2 = ag::gradgradcheck(f, in);
  EXPECT_TRUE(r2.ok) << r2.message;
}

TEST(Gradcheck, CatchesAWrongFirstDerivative) {
  const auto in = mt::random_inputs({{2, 3}}, 0.5, 1, 3);
  const auto r = ag::gradcheck([](const Args& v) { return scaled_square(v[0], 1.01); }, in);
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_NE(r.message.find("gradcheck"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("analytic"), std::string::npos) << r.message;
  EXPECT_GT(r.max_abs_error, 1e-3);
  EXPECT_FALSE(mt::check_gradients_at([](const Args& v) { return scaled_square(v[0], 1.01); }, in));
}

TEST(Gradcheck, CatchesAWrongSecondDerivative) {
  const auto in = mt::random_inputs({{2, 3}}, -1, 1, 3);
  auto f = [](const Args& v) { return square_constant_backward(v[0]); };
  EXPECT_TRUE(ag::gradcheck(f, in).ok);
  const auto r = ag::gradgradcheck(f, in);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("gradgradcheck"), std::string::npos) << r.message;
  EXPECT_FALSE(mt::check_gradients_at(f, in));
  EXPECT_TRUE(mt::check_gradients_at(f, in, {.second_order = false}));
}

TEST(Gradcheck, CatchesAMissingCrossTerm) {
  // f(x, y) = x * y with a rule that forgets the gradient to y.
  auto f = [](const Args& v) {
    TD out = ml::detail::map_binary(v[0], v[1], "xy", [](double a, double b) { return a * b; });
    ml::detail::record(out, "xy", {&v[0], &v[1]}, [b = v[1]](ml::Node<double>&, const TD& g) {
      return std::vector<TD>{ml::mul(g, b), TD()};
    });
    return out;
  };
  const auto r = ag::gradcheck(f, mt::random_inputs({{3}, {3}}, -1, 1, 8));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("input 1"), std::string::npos) << r.message;
}

TEST(Gradcheck, RejectsAFunctionThatIgnoresItsInputs) {
  auto f = [](const Args&) { return ml::ones<double>({2}); };
  EXPECT_THROW((void)ag::gradcheck(f, mt::random_inputs({{2}}, -1, 1, 1)), ml::AutogradError);
}

TEST(Gradcheck, RandomInputsAreSeeded) {
  const auto a = mt::random_inputs({{4}, {2, 2}}, -1, 1, 5);
  const auto b = mt::random_inputs({{4}, {2, 2}}, -1, 1, 5);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1].shape(), (ml::Shape{2, 2}));
  EXPECT_EQ(a[0].to_vector(), b[0].to_vector());
  EXPECT_EQ(a[1].to_vector(), b[1].to_vector());
  for (double v : a[0].to_vector()) {
    EXPECT_GE(v, -1.0);
    EXPECT_LT(v, 1.0);
  }
}
