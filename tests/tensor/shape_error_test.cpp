// Shapes that do not fit throw ShapeError naming the op and both shapes.

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "metalearn/tensor.hpp"

namespace ml = metalearn;
using TF = ml::Tensor<float>;
using V = std::vector<ml::Index>;

namespace {

/// The message of the ShapeError `f` throws ("" and a test failure otherwise).
std::string shape_error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const ml::ShapeError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "nothing thrown";
  return "";
}

::testing::AssertionResult names(const std::string& msg, const std::vector<std::string>& parts) {
  for (const auto& p : parts) {
    if (msg.find(p) == std::string::npos) {
      return ::testing::AssertionFailure() << "message \"" << msg << "\" lacks \"" << p << "\"";
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace

TEST(ShapeErrors, AddBroadcastMismatch) {
  const auto msg = shape_error_message([] {
    (void)ml::add(ml::zeros<float>({2, 3}), ml::zeros<float>({4}));
  });
  EXPECT_EQ(msg.rfind("add", 0), 0u) << msg;
  EXPECT_TRUE(names(msg, {"[2, 3]", "[4]"}));
  for (const char* op : {"sub", "mul", "div"}) {
    std::function<TF(const TF&, const TF&)> f;
    if (std::string(op) == "sub") f = [](const TF& a, const TF& b) { return ml::sub(a, b); };
    if (std::string(op) == "mul") f = [](const TF& a, const TF& b) { return ml::mul(a, b); };
    if (std::string(op) == "div") f = [](const TF& a, const TF& b) { return ml::div(a, b); };
    const auto m = shape_error_message([&] {
      (void)f(ml::zeros<float>({3, 2}), ml::zeros<float>({2, 3}));
    });
    EXPECT_EQ(m.rfind(op, 0), 0u) << m;
    EXPECT_TRUE(names(m, {"[3, 2]", "[2, 3]"}));
  }
}

TEST(ShapeErrors, MatmulInnerMismatch) {
  const auto msg = shape_error_message([] {
    (void)ml::matmul(ml::zeros<float>({2, 3}), ml::zeros<float>({4, 5}));
  });
  EXPECT_EQ(msg.rfind("matmul", 0), 0u) << msg;
  EXPECT_TRUE(names(msg, {"[2, 3]", "[4, 5]"}));
}

TEST(ShapeErrors, ReshapeWrongSize) {
  const auto msg = shape_error_message([] {
    (void)ml::reshape(ml::zeros<float>({2, 3}), V{4, 2});
  });
  EXPECT_EQ(msg.rfind("reshape", 0), 0u) << msg;
  EXPECT_TRUE(names(msg, {"[2, 3]", "[4, 2]"}));
  const auto m2 = shape_error_message([] {
    (void)ml::reshape(ml::zeros<float>({2, 3}), V{4, -1});
  });
  EXPECT_EQ(m2.rfind("reshape", 0), 0u) << m2;
  EXPECT_TRUE(names(m2, {"[2, 3]"}));
}

TEST(ShapeErrors, ConcatMismatch) {
  const auto msg = shape_error_message([] {
    (void)ml::concat<float>({ml::zeros<float>({2, 3}), ml::zeros<float>({2, 4})}, 0);
  });
  EXPECT_EQ(msg.rfind("concat", 0), 0u) << msg;
  EXPECT_TRUE(names(msg, {"[2, 3]", "[2, 4]"}));
  const auto m2 = shape_error_message([] {
    (void)ml::concat<float>({ml::zeros<float>({2, 3}), ml::zeros<float>({2, 3, 1})}, 1);
  });
  EXPECT_TRUE(names(m2, {"concat", "[2, 3]", "[2, 3, 1]"}));
}

TEST(ShapeErrors, Conv2dChannelMismatch) {
  const auto msg = shape_error_message([] {
    (void)ml::conv2d(ml::zeros<float>({1, 3, 8, 8}), ml::zeros<float>({16, 1, 3, 3}));
  });
  EXPECT_EQ(msg.rfind("conv2d", 0), 0u) << msg;
  EXPECT_TRUE(names(msg, {"[1, 3, 8, 8]", "[16, 1, 3, 3]"}));
}

TEST(ShapeErrors, OtherOps) {
  EXPECT_TRUE(names(shape_error_message([] {
                      (void)ml::mse_loss(ml::zeros<float>({3}), ml::zeros<float>({3, 1}));
                    }),
                    {"mse_loss", "[3]", "[3, 1]"}));
  EXPECT_TRUE(
      names(shape_error_message([] {
              (void)ml::pairwise_sq_dist(ml::zeros<float>({3, 2}), ml::zeros<float>({3, 4}));
            }),
            {"pairwise_sq_dist", "[3, 2]", "[3, 4]"}));
  EXPECT_TRUE(names(shape_error_message([] {
                      (void)ml::sum(ml::zeros<float>({3, 2}), 2);
                    }),
                    {"sum", "[3, 2]"}));
  EXPECT_TRUE(names(shape_error_message([] {
                      (void)ml::stack<float>({ml::zeros<float>({3}), ml::zeros<float>({2})}, 0);
                    }),
                    {"stack", "[3]", "[2]"}));
  EXPECT_TRUE(names(shape_error_message([] {
                      (void)ml::expand(ml::zeros<float>({3}), ml::Shape{2, 2});
                    }),
                    {"expand", "[3]", "[2, 2]"}));
}
