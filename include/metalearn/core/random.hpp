#pragma once
/// @file
/// Generator: a seeded pseudo-random source, always passed explicitly.

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <random>

namespace metalearn {

/// Mixes a 64-bit value (SplitMix64 finaliser). Used to derive independent seeds.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// Derives one seed from a list of integers, e.g. (run seed, split, task index).
constexpr std::uint64_t derive_seed(std::initializer_list<std::uint64_t> parts) {
  std::uint64_t h = 0x6A09E667F3BCC909ULL;
  for (std::uint64_t p : parts) h = mix64(h ^ mix64(p));
  return h;
}

/// A seeded random generator. Cheap to copy; each copy continues independently.
/// There is no global generator: every function that draws random numbers takes one.
class Generator {
 public:
  using result_type = std::uint64_t;

  explicit Generator(std::uint64_t seed = 0) : seed_(seed), engine_(mix64(seed)) {}

  [[nodiscard]] std::uint64_t seed() const { return seed_; }
  void reseed(std::uint64_t seed) {
    seed_ = seed;
    engine_.seed(mix64(seed));
  }

  /// A generator whose stream is independent of this one, derived from `index`.
  [[nodiscard]] Generator fork(std::uint64_t index) const {
    return Generator(derive_seed({seed_, index}));
  }

  static constexpr result_type min() { return std::mt19937_64::min(); }
  static constexpr result_type max() { return std::mt19937_64::max(); }
  result_type operator()() { return engine_(); }

  /// Uniform in [lo, hi).
  double uniform(double lo = 0.0, double hi = 1.0) {
    // 53 random bits -> [0, 1).
    const double u = static_cast<double>(engine_() >> 11) * (1.0 / 9007199254740992.0);
    return lo + (hi - lo) * u;
  }

  /// Standard normal (Box-Muller, one cached value).
  double normal(double mean = 0.0, double stddev = 1.0) {
    if (has_spare_) {
      has_spare_ = false;
      return mean + stddev * spare_;
    }
    double u1 = 0.0;
    do {
      u1 = uniform();
    } while (u1 <= 0.0);
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    constexpr double kTwoPi = 6.283185307179586476925286766559;
    spare_ = r * std::sin(kTwoPi * u2);
    has_spare_ = true;
    return mean + stddev * r * std::cos(kTwoPi * u2);
  }

  /// Uniform integer in [lo, hi] inclusive.
  /// Implemented here (not with std::uniform_int_distribution) so that the stream
  /// is the same with every standard library.
  std::int64_t randint(std::int64_t lo, std::int64_t hi) {
    // In unsigned arithmetic, which wraps where hi - lo would overflow a signed type.
    const std::uint64_t range = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo) + 1;
    if (range == 0) return static_cast<std::int64_t>(engine_());  // full 64-bit range
    const std::uint64_t limit = max() - (max() % range + 1) % range;
    std::uint64_t x = engine_();
    while (x > limit) x = engine_();
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(lo) + x % range);
  }

 private:
  std::uint64_t seed_;
  std::mt19937_64 engine_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace metalearn
