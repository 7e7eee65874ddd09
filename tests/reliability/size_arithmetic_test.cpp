// Size arithmetic: shapes, allocations, factories and casts whose sizes overflow
// throw OverflowError naming the operation and the values, instead of wrapping
// into a small block that later reads and writes overrun.
#include <cmath>
#include <cstdint>
#include <limits>

#include "reliability/reliability.hpp"

namespace {

using reliability::expect_error;
namespace ml = metalearn;

constexpr ml::Index k2to32 = ml::Index{1} << 32;
constexpr ml::Index k2to61 = ml::Index{1} << 61;
constexpr ml::Index k2to62 = ml::Index{1} << 62;

TEST(SizeArithmetic, ShapeWhoseProductOverflowsIsRejected) {
  expect_error<ml::OverflowError>([] { (void)ml::Shape{k2to32, k2to32}; }, "4294967296");
}

TEST(SizeArithmetic, ShapeFromVectorWhoseProductOverflowsIsRejected) {
  const std::vector<ml::Index> dims{3, k2to62, 2};
  expect_error<ml::OverflowError>([&] { (void)ml::Shape(dims); }, "Shape");
}

TEST(SizeArithmetic, ShapeWithNegativeExtentIsRejected) {
  expect_error<ml::ValueError>([] { (void)ml::Shape{2, -3}; }, "negative extent -3");
}

TEST(SizeArithmetic, ZerosWithOverflowingShapeThrows) {
  expect_error<ml::OverflowError>([] { (void)ml::zeros<float>({k2to32, k2to32}); }, "overflows");
}

TEST(SizeArithmetic, EmptyWhoseByteCountOverflowsThrows) {
  expect_error<ml::OverflowError>([] { (void)ml::Tensor<double>::empty({k2to62}); },
                                  "Tensor: allocation");
}

TEST(SizeArithmetic, EmptyBeyondTheStorageLimitThrows) {
  expect_error<ml::OverflowError>([] { (void)ml::Tensor<float>::empty({k2to61}); },
                                  "exceed the maximum");
}

TEST(SizeArithmetic, ArangeWithTooManyElementsThrows) {
  expect_error<ml::OverflowError>([] { (void)ml::arange(0.f, 1e30f); }, "arange");
}

TEST(SizeArithmetic, ArangeWhoseStorageIsTooLargeThrows) {
  expect_error<ml::OverflowError>([] { (void)ml::arange(0.f, 1e18f); }, "exceed the maximum");
}

TEST(SizeArithmetic, ArangeToInfinityThrows) {
  expect_error<ml::ValueError>(
      [] { (void)ml::arange(0.f, std::numeric_limits<float>::infinity()); }, "must be finite");
}

TEST(SizeArithmetic, ArangeWithNanStepThrows) {
  expect_error<ml::ValueError>([] { (void)ml::arange(0.0, 1.0, std::nan("")); }, "must be finite");
}

TEST(SizeArithmetic, ArangeStillWorks) {
  EXPECT_EQ(ml::arange(0.f, 3.f).to_vector(), (std::vector<float>{0.f, 1.f, 2.f}));
  EXPECT_EQ(ml::arange(1.0, 0.0).numel(), 0);
}

TEST(SizeArithmetic, ReshapeWhoseKnownExtentsOverflowThrows) {
  const auto t = ml::zeros<float>({4});
  expect_error<ml::OverflowError>(
      [&] {
        (void)ml::reshape(t, std::vector<ml::Index>{k2to62, 4, -1});
      },
      "reshape");
  EXPECT_EQ(t.shape(), (ml::Shape{4}));
}

TEST(SizeArithmetic, ShapeEditedInPlaceIsCheckedAtAllocation) {
  ml::Shape s{2, 2};
  s[0] = k2to62;
  s[1] = k2to32;
  expect_error<ml::OverflowError>([&] { (void)ml::Tensor<float>::empty(s); }, "Tensor::empty");
}

TEST(SizeArithmetic, ShapeEditedToNegativeIsCheckedAtAllocation) {
  ml::Shape s{2, 2};
  s[1] = -1;
  expect_error<ml::ValueError>([&] { (void)ml::zeros<double>(s); }, "negative extent");
}

TEST(SizeArithmetic, FromStorageWithOverflowingShapeThrows) {
  const auto t = ml::zeros<float>({4});
  ml::Shape big{2, 2};
  big[0] = k2to62;
  expect_error<ml::OverflowError>([&] { (void)ml::Tensor<float>::from_storage(t.storage(), big); },
                                  "Tensor::from_storage");
}

TEST(SizeArithmetic, RandnWithOverflowingShapeLeavesTheGeneratorAlone) {
  ml::Generator a(7);
  ml::Generator b(7);
  ml::Shape s{1, 1};
  s[0] = k2to32;
  s[1] = k2to32;
  expect_error<ml::OverflowError>([&] { (void)ml::randn<float>(s, a); }, "overflows");
  EXPECT_EQ(a.normal(0.0, 1.0), b.normal(0.0, 1.0));
}

TEST(SizeArithmetic, CheckedMulNamesTheOperationAndTheValues) {
  expect_error<ml::OverflowError>([] { (void)ml::checked_mul<std::int64_t>(k2to62, 4, "my_op"); },
                                  "my_op: 4611686018427387904 * 4 overflows");
  EXPECT_EQ(ml::checked_mul<std::int64_t>(k2to32, 4, "my_op"), k2to32 * 4);
}

TEST(SizeArithmetic, CheckedAddDetectsUnsignedWrapAround) {
  expect_error<ml::OverflowError>(
      [] { (void)ml::checked_add<std::uint64_t>(~std::uint64_t{0}, 1, "offset"); }, "offset");
  EXPECT_EQ(ml::checked_add<std::uint64_t>(2, 3, "offset"), 5u);
}

TEST(SizeArithmetic, CheckedCastRejectsOutOfRangeValues) {
  expect_error<ml::OverflowError>([] { (void)ml::checked_cast<std::int32_t>(1e10, "count"); },
                                  "count");
  expect_error<ml::OverflowError>([] { (void)ml::checked_cast<std::int64_t>(std::nan(""), "n"); },
                                  "cannot be represented");
  expect_error<ml::OverflowError>([] { (void)ml::checked_cast<std::uint8_t>(-1, "byte"); },
                                  "outside");
  expect_error<ml::OverflowError>([] { (void)ml::checked_cast<std::int64_t>(9.3e18, "n"); }, "n");
  EXPECT_EQ(ml::checked_cast<std::int64_t>(2.9, "n"), 2);
  EXPECT_EQ(ml::checked_cast<std::uint8_t>(255, "byte"), 255);
}

TEST(SizeArithmetic, CheckedBytesRejectsNegativeCounts) {
  expect_error<ml::OverflowError>([] { (void)ml::checked_bytes(-1, 4, "alloc"); },
                                  "negative element count");
}

TEST(SizeArithmetic, OverflowErrorIsAValueError) {
  EXPECT_THROW((void)ml::zeros<float>({k2to32, k2to32}), ml::ValueError);
}

}  // namespace
