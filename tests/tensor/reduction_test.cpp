// Reductions and softmax: values over float and double, gradients in double.

#include <gtest/gtest.h>

#include <vector>

#include "metalearn/autograd.hpp"
#include "metalearn/tensor.hpp"
#include "support/gradients.hpp"
#include "support/tensor_assertions.hpp"
#include "support/typed_scalars.hpp"

namespace ml = metalearn;
namespace mt = metalearn::testing;
using TD = ml::Tensor<double>;
using Args = std::vector<TD>;

template <class T>
class Reduction : public ::testing::Test {
 protected:
  ml::Tensor<T> x = mt::make<T>({2, 3}, {1, 5, 3, 4, 2, 6});
  ml::Tensor<T> b = ml::reshape(ml::arange<T>(T(0), T(24)), std::vector<ml::Index>{2, 3, 4});
};
TYPED_TEST_SUITE(Reduction, mt::RealTypes, mt::RealTypeNames);

TYPED_TEST(Reduction, SumAll) {
  EXPECT_TRUE(mt::values_near(ml::sum(this->x), {}, {21}));
  EXPECT_TRUE(mt::values_near(ml::sum(this->b), {}, {276}));
}

TYPED_TEST(Reduction, SumOneDim) {
  EXPECT_TRUE(mt::values_near(ml::sum(this->x, 0), {3}, {5, 7, 9}));
  EXPECT_TRUE(mt::values_near(ml::sum(this->x, 0, true), {1, 3}, {5, 7, 9}));
  EXPECT_TRUE(mt::values_near(ml::sum(this->x, 1), {2}, {9, 12}));
  EXPECT_TRUE(mt::values_near(ml::sum(this->x, -1, true), {2, 1}, {9, 12}));
  EXPECT_TRUE(mt::values_near(ml::sum(this->b, 1), {2, 4}, {12, 15, 18, 21, 48, 51, 54, 57}));
}

TYPED_TEST(Reduction, SumDimList) {
  using V = std::vector<ml::Index>;
  EXPECT_TRUE(mt::values_near(ml::sum(this->b, V{0, 2}), {3}, {60, 92, 124}));
  EXPECT_TRUE(mt::values_near(ml::sum(this->b, V{2, 0}, true), {1, 3, 1}, {60, 92, 124}));
  EXPECT_TRUE(mt::values_near(ml::sum(this->b, V{0, -2}), {4}, {60, 66, 72, 78}));
  EXPECT_TRUE(mt::values_near(ml::sum(this->b, V{0, 1, 2}), {}, {276}));
}

TYPED_TEST(Reduction, Mean) {
  using V = std::vector<ml::Index>;
  EXPECT_TRUE(mt::values_near(ml::mean(this->x), {}, {3.5}));
  EXPECT_TRUE(mt::values_near(ml::mean(this->x, 0), {3}, {2.5, 3.5, 4.5}));
  EXPECT_TRUE(mt::values_near(ml::mean(this->x, 1, true), {2, 1}, {3, 4}));
  EXPECT_TRUE(mt::values_near(ml::mean(this->b, V{0, 2}), {3}, {7.5, 11.5, 15.5}));
  EXPECT_TRUE(mt::values_near(ml::mean(this->b, V{1, 2}, true), {2, 1, 1}, {5.5, 17.5}));
}

TYPED_TEST(Reduction, Max) {
  EXPECT_TRUE(mt::values_near(ml::max(this->x), {}, {6}));
  EXPECT_TRUE(mt::values_near(ml::max(this->x, 0), {3}, {4, 5, 6}));
  EXPECT_TRUE(mt::values_near(ml::max(this->x, 0, true), {1, 3}, {4, 5, 6}));
  EXPECT_TRUE(mt::values_near(ml::max(this->x, 1), {2}, {5, 6}));
  EXPECT_TRUE(mt::values_near(ml::max(this->x, -1, true), {2, 1}, {5, 6}));
  EXPECT_TRUE(mt::values_near(ml::max(this->b, 1), {2, 4}, {8, 9, 10, 11, 20, 21, 22, 23}));
}

TYPED_TEST(Reduction, MaxGradientGoesToFirstMaximum) {
  using T = TypeParam;
  auto t = mt::make<T>({2, 3}, {1, 7, 7, 2, 0, 2}).requires_grad(true);
  auto g = ml::autograd::grad({ml::sum(ml::max(t, 1))}, {t})[0];
  EXPECT_TRUE(mt::values_near(g, {2, 3}, {0, 1, 0, 1, 0, 0}));
  auto g0 = ml::autograd::grad({ml::max(t)}, {t})[0];
  EXPECT_TRUE(mt::values_near(g0, {2, 3}, {0, 1, 0, 0, 0, 0}));
}

TYPED_TEST(Reduction, Argmax) {
  EXPECT_EQ(ml::argmax(this->x, 0), (std::vector<ml::Index>{1, 0, 1}));
  EXPECT_EQ(ml::argmax(this->x, 1), (std::vector<ml::Index>{1, 2}));
}

TYPED_TEST(Reduction, Logsumexp) {
  EXPECT_TRUE(mt::values_near(ml::logsumexp(this->x), {}, {6.456193316018123}));
  EXPECT_TRUE(mt::values_near(ml::logsumexp(this->x, 0), {3},
                              {4.048587351573742, 5.048587351573742, 6.048587351573742}));
  EXPECT_TRUE(mt::values_near(ml::logsumexp(this->x, 0, true), {1, 3},
                              {4.048587351573742, 5.048587351573742, 6.048587351573742}));
  EXPECT_TRUE(
      mt::values_near(ml::logsumexp(this->x, 1), {2}, {5.1429316284999, 6.142931628499899}));
  EXPECT_TRUE(mt::values_near(ml::logsumexp(this->x, 1, true), {2, 1},
                              {5.1429316284999, 6.142931628499899}));
}

TYPED_TEST(Reduction, LogsumexpIsStable) {
  using T = TypeParam;
  auto big = mt::make<T>({2}, {1000, 1000});
  EXPECT_TRUE(mt::values_near(ml::logsumexp(big, 0), {}, {1000.6931471805599453}));
}

TYPED_TEST(Reduction, Softmax) {
  EXPECT_TRUE(mt::values_near(ml::softmax(this->x, 1), {2, 3},
                              {0.015876239976466765, 0.8668133321973348, 0.11731042782619835,
                               0.11731042782619835, 0.015876239976466765, 0.8668133321973348}));
  EXPECT_TRUE(mt::values_near(ml::softmax(this->x, 0), {2, 3},
                              {0.04742587317756678, 0.9525741268224331, 0.04742587317756678,
                               0.9525741268224331, 0.04742587317756678, 0.9525741268224331}));
  EXPECT_TRUE(mt::values_near(ml::log_softmax(this->x, -1), {2, 3},
                              {-4.142931628499899, -0.14293162849989915, -2.142931628499899,
                               -2.142931628499899, -4.142931628499899, -0.14293162849989915}));
  using T = TypeParam;
  auto big = mt::make<T>({3}, {1000, 0, -1000});
  EXPECT_TRUE(mt::values_near(ml::softmax(big, 0), {3}, {1, 0, 0}));
  EXPECT_TRUE(mt::values_near(ml::log_softmax(big, 0), {3}, {0, -1000, -2000}));
}

TYPED_TEST(Reduction, BadDimThrows) {
  EXPECT_THROW(ml::sum(this->x, 2), ml::ShapeError);
  EXPECT_THROW(ml::mean(this->x, -3), ml::ShapeError);
  EXPECT_THROW(ml::softmax(this->x, 5), ml::ShapeError);
}

// ---- gradient checks (double) --------------------------------------------------

TEST(ReductionGradcheck, SumMean) {
  using V = std::vector<ml::Index>;
  const std::vector<ml::Shape> s{{2, 3, 4}};
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::sum(v[0]); }, s));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::mean(v[0]); }, s));
  for (bool keep : {false, true}) {
    SCOPED_TRACE(keep ? "keepdim" : "no keepdim");
    for (ml::Index d : {0, 1, 2, -1}) {
      EXPECT_TRUE(
          mt::check_gradients([d, keep](const Args& v) { return ml::sum(v[0], d, keep); }, s));
      EXPECT_TRUE(
          mt::check_gradients([d, keep](const Args& v) { return ml::mean(v[0], d, keep); }, s));
    }
    EXPECT_TRUE(mt::check_gradients(
        [keep](const Args& v) {
          return ml::sum(v[0], V{0, 2}, keep);
        },
        s));
    EXPECT_TRUE(mt::check_gradients(
        [keep](const Args& v) {
          return ml::mean(v[0], V{2, 1}, keep);
        },
        s));
  }
}

TEST(ReductionGradcheck, MaxAwayFromTies) {
  // Random inputs are distinct with probability one; the seed fixes them.
  const std::vector<ml::Shape> s{{3, 4}};
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::max(v[0]); }, s));
  for (bool keep : {false, true}) {
    EXPECT_TRUE(mt::check_gradients([keep](const Args& v) { return ml::max(v[0], 0, keep); }, s));
    EXPECT_TRUE(mt::check_gradients([keep](const Args& v) { return ml::max(v[0], 1, keep); }, s));
  }
  // Max of a smooth function: curvature flows through the selected element.
  EXPECT_TRUE(
      mt::check_gradients([](const Args& v) { return ml::max(ml::mul(v[0], v[0]), 1); }, s));
}

TEST(ReductionGradcheck, Logsumexp) {
  const std::vector<ml::Shape> s{{3, 4}};
  const mt::GradientSpec wide{.lo = -2, .hi = 2};
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::logsumexp(v[0]); }, s, wide));
  for (bool keep : {false, true}) {
    for (ml::Index d : {0, 1}) {
      EXPECT_TRUE(mt::check_gradients(
          [d, keep](const Args& v) { return ml::logsumexp(v[0], d, keep); }, s, wide));
    }
  }
}

TEST(ReductionGradcheck, SoftmaxLogSoftmax) {
  const std::vector<ml::Shape> s{{2, 3, 4}};
  const mt::GradientSpec wide{.lo = -2, .hi = 2};
  for (ml::Index d : {0, 1, 2}) {
    SCOPED_TRACE(::testing::Message() << "dim " << d);
    EXPECT_TRUE(mt::check_gradients([d](const Args& v) { return ml::softmax(v[0], d); }, s, wide));
    EXPECT_TRUE(
        mt::check_gradients([d](const Args& v) { return ml::log_softmax(v[0], d); }, s, wide));
  }
}
