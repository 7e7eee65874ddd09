#include <gtest/gtest.h>

#include <metalearn/metalearn.hpp>

namespace ml = metalearn;

TEST(Smoke, AddBackward) {
  auto a = ml::from_vector<double>({1, 2, 3}).requires_grad(true);
  auto y = ml::sum(a * a);
  y.backward();
  EXPECT_DOUBLE_EQ(a.grad().data()[2], 6.0);
}
