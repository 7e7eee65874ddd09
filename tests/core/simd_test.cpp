// The run-time choice of the kernels' instruction set.

#include "metalearn/core/simd.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace ml = metalearn;

// The chosen target is one this CPU supports, and with METALEARN_SIMD set (CI reruns
// the kernel tests under each supported target) it is no better than the one named:
// the supported list is ordered best first.
TEST(Simd, ChoosesASupportedTargetWithinTheCap) {
  const auto supported = ml::simd_targets_supported();
  ASSERT_FALSE(supported.empty());
  const std::string chosen(ml::simd_target());
  const auto at = std::find(supported.begin(), supported.end(), chosen);
  ASSERT_NE(at, supported.end()) << chosen;
  if (const char* cap = std::getenv("METALEARN_SIMD"); cap != nullptr && *cap != '\0') {
    std::string want(cap);
    std::transform(want.begin(), want.end(), want.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (want == "AVX512") want = "AVX3";
    const auto capped = std::find(supported.begin(), supported.end(), want);
    if (capped != supported.end()) {
      EXPECT_EQ(chosen, want);
    }
  } else {
    EXPECT_EQ(chosen, supported.front()) << "without a cap the best supported target runs";
  }
}
