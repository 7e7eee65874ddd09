#include <gtest/gtest.h>

#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/core/shape.hpp"

namespace ml = metalearn;

namespace {

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ml::Error& e) {
    return e.what();
  }
  return "<nothing thrown>";
}

}  // namespace

TEST(Shape, BasicProperties) {
  const ml::Shape s{2, 3, 4};
  EXPECT_EQ(s.dim(), 3);
  EXPECT_EQ(s.numel(), 24);
  EXPECT_EQ(s[1], 3);
  EXPECT_EQ(s.strides(), (std::vector<ml::Index>{12, 4, 1}));
  EXPECT_EQ(s.to_string(), "[2, 3, 4]");
}

TEST(Shape, ScalarShape) {
  const ml::Shape s;
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_TRUE(s.strides().empty());
  EXPECT_EQ(s.to_string(), "[]");
}

TEST(Shape, ZeroExtent) {
  const ml::Shape s{3, 0, 2};
  EXPECT_EQ(s.numel(), 0);
}

TEST(Shape, Equality) {
  EXPECT_EQ((ml::Shape{2, 3}), (ml::Shape{2, 3}));
  EXPECT_NE((ml::Shape{2, 3}), (ml::Shape{3, 2}));
  EXPECT_NE((ml::Shape{2, 3}), (ml::Shape{1, 2, 3}));
}

TEST(Shape, NegativeExtentThrowsValueError) {
  EXPECT_THROW((ml::Shape{2, -1}), ml::ValueError);
  EXPECT_THROW(ml::Shape(std::vector<ml::Index>{-3}), ml::ValueError);
  EXPECT_NE(message_of([] { (void)ml::Shape{4, -2}; }).find("-2"), std::string::npos);
}

TEST(Shape, WrapDim) {
  const ml::Shape s{2, 3, 4};
  EXPECT_EQ(s.wrap_dim(0, "op"), 0);
  EXPECT_EQ(s.wrap_dim(-1, "op"), 2);
  EXPECT_EQ(s.wrap_dim(-3, "op"), 0);
  EXPECT_THROW((void)s.wrap_dim(3, "op"), ml::ShapeError);
  EXPECT_THROW((void)s.wrap_dim(-4, "op"), ml::ShapeError);
  const std::string msg = message_of([&] { (void)s.wrap_dim(5, "myop"); });
  EXPECT_EQ(msg.rfind("myop", 0), 0u) << msg;
  EXPECT_NE(msg.find("[2, 3, 4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find('5'), std::string::npos) << msg;
}

TEST(Shape, StreamsAsString) {
  std::ostringstream os;
  os << ml::Shape{5, 1};
  EXPECT_EQ(os.str(), "[5, 1]");
}

TEST(BroadcastShapes, SameShape) {
  EXPECT_EQ(ml::broadcast_shapes({2, 3}, {2, 3}, "op"), (ml::Shape{2, 3}));
}

TEST(BroadcastShapes, TrailingAlignment) {
  EXPECT_EQ(ml::broadcast_shapes({3, 4}, {4}, "op"), (ml::Shape{3, 4}));
  EXPECT_EQ(ml::broadcast_shapes({4}, {3, 4}, "op"), (ml::Shape{3, 4}));
  EXPECT_EQ(ml::broadcast_shapes({3, 1}, {1, 4}, "op"), (ml::Shape{3, 4}));
  EXPECT_EQ(ml::broadcast_shapes({2, 1, 5}, {3, 1}, "op"), (ml::Shape{2, 3, 5}));
  EXPECT_EQ(ml::broadcast_shapes({}, {2, 2}, "op"), (ml::Shape{2, 2}));
  EXPECT_EQ(ml::broadcast_shapes({1}, {}, "op"), (ml::Shape{1}));
  EXPECT_EQ(ml::broadcast_shapes({0, 1}, {1, 3}, "op"), (ml::Shape{0, 3}));
}

TEST(BroadcastShapes, MismatchNamesOpAndBothShapes) {
  EXPECT_THROW(ml::broadcast_shapes({2, 3}, {4}, "add"), ml::ShapeError);
  const std::string msg = message_of([] { ml::broadcast_shapes({2, 3}, {4}, "add"); });
  EXPECT_EQ(msg.rfind("add", 0), 0u) << msg;
  EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4]"), std::string::npos) << msg;
}

TEST(Shape, DimsIsAViewAndToVectorACopy) {
  ml::Shape s{2, 3, 4};
  const auto view = s.dims();
  ASSERT_EQ(view.size(), 3U);
  EXPECT_EQ(view.data(), s.begin());
  EXPECT_EQ(std::vector<ml::Index>(view.begin(), view.end()), (std::vector<ml::Index>{2, 3, 4}));
  std::vector<ml::Index> copy = s.to_vector();
  copy[0] = 7;
  EXPECT_EQ(s[0], 2);
  s[1] = 5;  // the view follows the Shape it looks at
  EXPECT_EQ(view[1], 5);
  EXPECT_TRUE(ml::Shape{}.to_vector().empty());
}
