// The convolution GEMM (the order-keeping float kernel, OpenBLAS or Eigen, see
// gemm.hpp): every transposition with padded row strides against a plain triple loop,
// a destination that is never read, equal columns that give bit-equal results, and
// concurrent calls that give the bits of serial ones.

#include "metalearn/tensor/gemm.hpp"

#include "metalearn/core/simd.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include "support/typed_scalars.hpp"

namespace ml = metalearn;
namespace mt = metalearn::testing;
using ml::Index;

namespace {

/// A row-major [rows, cols] matrix stored with row stride ld >= cols; the padding
/// holds a sentinel that a correct GEMM never reads into its result.
template <class T>
struct Strided {
  Index rows, cols, ld;
  std::vector<T> v;
  Strided(Index r, Index c, Index pad, std::mt19937& rng)
      : rows(r), cols(c), ld(c + pad), v(static_cast<std::size_t>(r * (c + pad)), T(1e30)) {
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    for (Index i = 0; i < r; ++i) {
      for (Index j = 0; j < c; ++j)
        v[static_cast<std::size_t>(i * ld + j)] = static_cast<T>(u(rng));
    }
  }
  [[nodiscard]] T at(Index i, Index j) const { return v[static_cast<std::size_t>(i * ld + j)]; }
};

template <class T>
class Gemm : public ::testing::Test {};
TYPED_TEST_SUITE(Gemm, mt::RealTypes, mt::RealTypeNames);

TYPED_TEST(Gemm, MatchesATripleLoopForEveryTranspositionAndStride) {
  using T = TypeParam;
  std::mt19937 rng(7);
  const std::vector<std::tuple<Index, Index, Index>> shapes{
      {1, 1, 1}, {3, 5, 7}, {64, 77, 9}, {37, 130, 65}, {70, 2, 300}, {100, 37, 1500}};
  for (const auto& [m, n, k] : shapes) {
    for (const bool ta : {false, true}) {
      for (const bool tb : {false, true}) {
        // a stores op(a) [m, k] (or its transpose), b stores op(b) [k, n] (or its transpose).
        const Strided<T> a(ta ? k : m, ta ? m : k, 3, rng);
        const Strided<T> b(tb ? n : k, tb ? k : n, 5, rng);
        const Index ldc = n + 2;
        std::vector<T> c(static_cast<std::size_t>(m * ldc), std::numeric_limits<T>::quiet_NaN());
        ml::detail::gemm(ta, tb, m, n, k, a.v.data(), a.ld, b.v.data(), b.ld, c.data(), ldc);
        double worst = 0.0;
        for (Index i = 0; i < m; ++i) {
          for (Index j = 0; j < n; ++j) {
            double want = 0.0, scale = 0.0;
            for (Index p = 0; p < k; ++p) {
              const double x = static_cast<double>(ta ? a.at(p, i) : a.at(i, p));
              const double y = static_cast<double>(tb ? b.at(j, p) : b.at(p, j));
              want += x * y;
              scale += std::abs(x * y);
            }
            const double got = static_cast<double>(c[static_cast<std::size_t>(i * ldc + j)]);
            ASSERT_FALSE(std::isnan(got))
                << "gemm read its destination at (" << i << ", " << j << ")";
            worst = std::max(worst, std::abs(got - want) / std::max(scale, 1e-300));
          }
          // The row padding of c stays as it was.
          EXPECT_TRUE(std::isnan(c[static_cast<std::size_t>(i * ldc + n)]));
        }
        EXPECT_LT(worst, mt::value_tolerance<T>())
            << "m=" << m << " n=" << n << " k=" << k << " ta=" << ta << " tb=" << tb;
      }
    }
  }
}

TYPED_TEST(Gemm, EmptyInnerDimensionGivesZeros) {
  using T = TypeParam;
  std::vector<T> c(6, T(5));
  const T dummy = T(1);
  ml::detail::gemm(false, false, 2, 3, 0, &dummy, 1, &dummy, 3, c.data(), 3);
  for (const T v : c) EXPECT_EQ(v, T(0));
}

// Products whose b is not transposed, whose a is small (up to 192 KiB) and whose inner
// dimension is at most 1024 sum each element in one order whatever its position, on
// every target (see gemm.hpp): equal columns of b, wherever they sit (first, middle or
// last columns, within or past the last full panel), give bit-equal columns of c, with a
// stored as is or transposed. Shapes cover short and long inner dimensions (taken in
// several slices, with a small or a large a) and rows that do not fill the last block of
// six.
TEST(Gemm, EqualColumnsGiveBitEqualColumnsWhenBIsNotTransposed) {
  std::mt19937 rng(13);
  const std::vector<std::tuple<Index, Index, Index>> shapes{
      {64, 980, 576}, {64, 45, 576}, {37, 77, 9},    {5, 33, 130},
      {64, 3920, 9},  {576, 50, 64}, {16, 70, 1000}, {200, 40, 1200}};
  // Past the kernel's size (k > 1024, a > 192 KiB) the order holds only where the
  // library's own kernel takes every product (gemm_backend() names it then); OpenBLAS
  // or Eigen may split the inner dimension differently per column block.
  const bool own_kernel_everywhere = ml::gemm_backend().rfind("metalearn", 0) == 0;
  for (const auto& [m, n, k] : shapes) {
    if (k > 1024 && !own_kernel_everywhere) continue;
    for (const bool ta : {false, true}) {
      const Strided<float> a(ta ? k : m, ta ? m : k, 1, rng);
      Strided<float> b(k, n, 3, rng);
      // Every seventh column (and the last) is the same vector.
      std::vector<Index> same;
      for (Index j = 2; j < n; j += 7) same.push_back(j);
      same.push_back(n - 1);
      for (Index p = 0; p < k; ++p) {
        const float v = b.at(p, 2);
        for (const Index j : same) b.v[static_cast<std::size_t>(p * b.ld + j)] = v;
      }
      std::vector<float> c(static_cast<std::size_t>(m * n));
      ml::detail::gemm(ta, false, m, n, k, a.v.data(), a.ld, b.v.data(), b.ld, c.data(), n);
      int unequal = 0;
      for (Index i = 0; i < m; ++i) {
        for (const Index j : same) {
          if (c[static_cast<std::size_t>(i * n + j)] != c[static_cast<std::size_t>(i * n + 2)]) {
            ++unequal;
          }
        }
      }
      EXPECT_EQ(unequal, 0) << "m=" << m << " n=" << n << " k=" << k << " ta=" << ta << " on "
                            << ml::simd_target();
    }
  }
}

TEST(Gemm, ConcurrentCallsGiveTheBitsOfSerialOnes) {
  std::mt19937 rng(11);
  const Index m = 64, n = 700, k = 576;
  const Strided<float> a(m, k, 0, rng);
  const Strided<float> b(k, n, 0, rng);
  std::vector<float> serial(static_cast<std::size_t>(m * n));
  ml::detail::gemm(false, false, m, n, k, a.v.data(), k, b.v.data(), n, serial.data(), n);
  constexpr int kThreads = 4, kCalls = 20;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<float> c(serial.size());
      for (int r = 0; r < kCalls; ++r) {
        ml::detail::gemm(false, false, m, n, k, a.v.data(), k, b.v.data(), n, c.data(), n);
        if (c != serial) ++mismatches[static_cast<std::size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[static_cast<std::size_t>(t)], 0);
}

TEST(Gemm, BackendIsSequential) {
  // A threaded OpenBLAS in place of the sequential one (the loader found another
  // variant's libopenblas.so.0) would start threads inside our threads.
  // Where OpenBLAS runs generic kernels on this CPU, or Eigen was built without AVX,
  // the library's own kernel takes every product and starts no threads either.
  const std::string_view backend = ml::gemm_backend();
  EXPECT_TRUE(backend == "eigen" || backend == "openblas (sequential)" ||
              backend.substr(0, 11) == "metalearn (")
      << backend;
}

}  // namespace
