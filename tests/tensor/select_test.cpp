// select and unbind: values, errors, and first- and second-order gradients.
#include <gtest/gtest.h>

#include <vector>

#include "metalearn/autograd.hpp"
#include "metalearn/tensor.hpp"
#include "support/gradients.hpp"
#include "support/tensor_assertions.hpp"

namespace {

namespace ml = metalearn;
namespace mt = metalearn::testing;
using TD = ml::Tensor<double>;
using Args = std::vector<TD>;

TEST(Select, PicksOneSliceAndDropsItsDimension) {
  const TD a = mt::make<double>({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_TRUE(mt::values_near(ml::select(a, 0, 1), {3}, {4, 5, 6}));
  EXPECT_TRUE(mt::values_near(ml::select(a, 1, 2), {2}, {3, 6}));
  EXPECT_TRUE(mt::values_near(ml::select(a, -1, -3), {2}, {1, 4}));  // from the end
  EXPECT_EQ(ml::select(ml::select(a, 0, 0), 0, 1).shape(), ml::Shape{});
}

TEST(Select, OutOfRangeIndexOrDimensionIsAShapeError) {
  const TD a = mt::make<double>({2, 3}, {1, 2, 3, 4, 5, 6});
  try {
    (void)ml::select(a, 1, 3);
    FAIL() << "index 3 of a dimension of 3 was accepted";
  } catch (const ml::ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("select: index 3 is out of range for dimension 1"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW((void)ml::select(a, 0, -3), ml::ShapeError);
  EXPECT_THROW((void)ml::select(a, 2, 0), ml::ShapeError);
  EXPECT_THROW((void)ml::unbind(a, 2), ml::ShapeError);
}

TEST(Unbind, IsTheInverseOfStack) {
  const TD a = ml::reshape(ml::arange<double>(0.0, 24.0), std::vector<ml::Index>{2, 3, 4});
  for (ml::Index d = 0; d < 3; ++d) {
    const std::vector<TD> parts = ml::unbind(a, d);
    ASSERT_EQ(static_cast<ml::Index>(parts.size()), a.shape()[d]);
    EXPECT_EQ(ml::stack(parts, d).to_vector(), a.to_vector()) << "dimension " << d;
  }
}

TEST(SelectGradcheck, FirstAndSecondOrder) {
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::square(ml::select(v[0], 1, -1)); },
                                  {{2, 3, 2}}));
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) { return ml::mul(ml::select(v[0], 0, 0), ml::select(v[0], 0, 1)); },
      {{2, 4}}));
}

TEST(UnbindGradcheck, FirstAndSecondOrder) {
  // Every part weighted differently, so each slice's gradient is told apart.
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) {
        const std::vector<TD> parts = ml::unbind(v[0], 1);
        TD out = ml::square(parts[0]);
        for (std::size_t i = 1; i < parts.size(); ++i) {
          out = ml::add(out, ml::mul_scalar(ml::mul(parts[i], parts[0]), double(i + 1)));
        }
        return out;
      },
      {{3, 4}}));
}

}  // namespace
