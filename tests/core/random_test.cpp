#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "metalearn/core/random.hpp"

namespace ml = metalearn;

namespace {

std::vector<std::uint64_t> draw(ml::Generator& g, int n) {
  std::vector<std::uint64_t> v;
  for (int i = 0; i < n; ++i) v.push_back(g());
  return v;
}

}  // namespace

TEST(Generator, SameSeedSameStream) {
  ml::Generator a(123);
  ml::Generator b(123);
  EXPECT_EQ(draw(a, 100), draw(b, 100));
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(a.uniform(), b.uniform());
    EXPECT_EQ(a.normal(), b.normal());
    EXPECT_EQ(a.randint(-5, 5), b.randint(-5, 5));
  }
}

TEST(Generator, DifferentSeedsDifferentStreams) {
  ml::Generator a(1);
  ml::Generator b(2);
  EXPECT_NE(draw(a, 10), draw(b, 10));
}

TEST(Generator, ReseedRestartsStream) {
  ml::Generator a(7);
  const auto first = draw(a, 20);
  a.reseed(7);
  EXPECT_EQ(draw(a, 20), first);
  EXPECT_EQ(a.seed(), 7u);
}

TEST(Generator, CopyContinuesIndependently) {
  ml::Generator a(9);
  (void)draw(a, 5);
  ml::Generator b = a;
  EXPECT_EQ(draw(a, 10), draw(b, 10));
}

TEST(Generator, ForkIsDeterministicAndIndependent) {
  const ml::Generator parent(42);
  ml::Generator f0 = parent.fork(0);
  ml::Generator f0b = parent.fork(0);
  ml::Generator f1 = parent.fork(1);
  ml::Generator p = parent;
  const auto s0 = draw(f0, 50);
  EXPECT_EQ(s0, draw(f0b, 50));
  EXPECT_NE(s0, draw(f1, 50));
  EXPECT_NE(s0, draw(p, 50));
  // Forking does not advance the parent.
  ml::Generator q(42);
  ml::Generator parent_copy = parent;
  EXPECT_EQ(draw(parent_copy, 10), draw(q, 10));
  // A fork of a different parent seed differs.
  ml::Generator other = ml::Generator(43).fork(0);
  ml::Generator f0c = parent.fork(0);
  EXPECT_NE(draw(other, 10), draw(f0c, 10));
}

TEST(Generator, UniformRangeAndMean) {
  ml::Generator g(5);
  double sum = 0.0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const double u = g.uniform(-2.0, 3.0);
    ASSERT_GE(u, -2.0);
    ASSERT_LT(u, 3.0);
    sum += u;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.05);
}

TEST(Generator, NormalMoments) {
  ml::Generator g(6);
  const int n = 20000;
  double s = 0.0;
  double s2 = 0.0;
  for (int i = 0; i < n; ++i) {
    const double x = g.normal(1.0, 2.0);
    ASSERT_TRUE(std::isfinite(x));
    s += x;
    s2 += x * x;
  }
  const double mean = s / n;
  const double var = s2 / n - mean * mean;
  EXPECT_NEAR(mean, 1.0, 0.06);
  EXPECT_NEAR(var, 4.0, 0.2);
}

TEST(Generator, RandintRangeIsInclusiveAndUniform) {
  ml::Generator g(11);
  std::array<int, 7> counts{};
  const int n = 70000;
  for (int i = 0; i < n; ++i) {
    const auto v = g.randint(3, 9);
    ASSERT_GE(v, 3);
    ASSERT_LE(v, 9);
    ++counts[static_cast<std::size_t>(v - 3)];
  }
  // Each of 7 values expected 10000 times; sd about 93.
  for (int c : counts) EXPECT_NEAR(c, 10000, 500);
}

TEST(Generator, RandintSingletonAndNegativeRanges) {
  ml::Generator g(12);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(g.randint(4, 4), 4);
  std::set<std::int64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto v = g.randint(-3, -1);
    ASSERT_GE(v, -3);
    ASSERT_LE(v, -1);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 3u);
}

TEST(Generator, RandintFullRangeDoesNotHang) {
  ml::Generator g(13);
  const auto lo = std::numeric_limits<std::int64_t>::min();
  const auto hi = std::numeric_limits<std::int64_t>::max();
  std::set<std::int64_t> seen;
  for (int i = 0; i < 10; ++i) seen.insert(g.randint(lo, hi));
  EXPECT_GT(seen.size(), 5u);
}

TEST(Generator, WorksWithStandardDistributions) {
  ml::Generator g(14);
  std::vector<int> v{1, 2, 3, 4, 5, 6, 7, 8};
  auto w = v;
  ml::Generator h(14);
  std::shuffle(v.begin(), v.end(), g);
  std::shuffle(w.begin(), w.end(), h);
  EXPECT_EQ(v, w);
}

TEST(DeriveSeed, DeterministicAndOrderSensitive) {
  EXPECT_EQ(ml::derive_seed({1, 2, 3}), ml::derive_seed({1, 2, 3}));
  EXPECT_NE(ml::derive_seed({1, 2, 3}), ml::derive_seed({3, 2, 1}));
  EXPECT_NE(ml::derive_seed({1, 2}), ml::derive_seed({1, 2, 0}));
  EXPECT_NE(ml::derive_seed({0}), ml::derive_seed({}));
  static_assert(ml::derive_seed({5, 6}) == ml::derive_seed({5, 6}), "constexpr");
}

TEST(DeriveSeed, NoCollisionsOnAGrid) {
  std::set<std::uint64_t> seeds;
  for (std::uint64_t a = 0; a < 10; ++a) {
    for (std::uint64_t b = 0; b < 3; ++b) {
      for (std::uint64_t c = 0; c < 100; ++c) seeds.insert(ml::derive_seed({a, b, c}));
    }
  }
  EXPECT_EQ(seeds.size(), 3000u);
}

TEST(DeriveSeed, ForkMatchesDerivedSeed) {
  ml::Generator parent(100);
  ml::Generator f = parent.fork(7);
  EXPECT_EQ(f.seed(), ml::derive_seed({100, 7}));
}
