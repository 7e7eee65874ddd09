#include <gtest/gtest.h>

#include <string>

#include "metalearn/core/error.hpp"
#include "metalearn/core/shape.hpp"

namespace ml = metalearn;

TEST(Error, HierarchyDerivesFromError) {
  EXPECT_THROW(throw ml::ShapeError("x"), ml::Error);
  EXPECT_THROW(throw ml::ValueError("x"), ml::Error);
  EXPECT_THROW(throw ml::IoError("x"), ml::Error);
  EXPECT_THROW(throw ml::AutogradError("x"), ml::Error);
  EXPECT_THROW(throw ml::AssertionFailure("x"), ml::Error);
  EXPECT_THROW(throw ml::Error("x"), std::runtime_error);
}

TEST(Error, CheckPassesWhenConditionHolds) {
  EXPECT_NO_THROW(METALEARN_CHECK(1 + 1 == 2, ValueError, "never"));
}

TEST(Error, CheckConcatenatesMessageParts) {
  try {
    const ml::Shape s{2, 3};
    METALEARN_CHECK(s.dim() == 3, ShapeError, "myop: expected 3-D, got ", s, " (", 2.5, ")");
    FAIL() << "nothing thrown";
  } catch (const ml::ShapeError& e) {
    EXPECT_EQ(std::string(e.what()), "myop: expected 3-D, got [2, 3] (2.5)");
  }
}

TEST(Error, CheckThrowsTheRequestedType) {
  EXPECT_THROW(METALEARN_CHECK(false, IoError, "f: missing file ", "a.bin"), ml::IoError);
  EXPECT_THROW(METALEARN_CHECK(false, AutogradError, "g"), ml::AutogradError);
}

TEST(Error, CheckEvaluatesConditionOnce) {
  int calls = 0;
  auto cond = [&calls] {
    ++calls;
    return true;
  };
  METALEARN_CHECK(cond(), ValueError, "unused");
  EXPECT_EQ(calls, 1);
}

TEST(Error, StrCat) {
  EXPECT_EQ(ml::detail::str_cat("a", 1, ' ', 2.5, "b"), "a1 2.5b");
}

#ifndef NDEBUG
TEST(Error, AssertThrowsAssertionFailureInDebug) {
  EXPECT_THROW(METALEARN_ASSERT(1 == 2, "detail"), ml::AssertionFailure);
  EXPECT_NO_THROW(METALEARN_ASSERT(1 == 1));
}
#endif
