// The run-time choice of the kernels' instruction set (metalearn/core/simd.hpp).

#include "metalearn/core/simd.hpp"

#include <hwy/highway.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "metalearn/core/error.hpp"

namespace metalearn {
namespace {

/// The targets this library was compiled for, best first (lower bits are better).
std::vector<std::int64_t> compiled_targets() {
  std::vector<std::int64_t> out;
  for (std::int64_t t = HWY_TARGETS; t != 0; t &= t - 1) out.push_back(t & -t);
  return out;
}

std::string upper(std::string_view s) {
  std::string u(s);
  std::transform(u.begin(), u.end(), u.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return u;
}

/// The target bit METALEARN_SIMD names, 0 when it is unset or empty.
std::int64_t requested_target() {
  const char* env = std::getenv("METALEARN_SIMD");
  if (env == nullptr || *env == '\0') return 0;
  std::string want = upper(env);
  if (want == "AVX512" || want == "AVX-512") want = "AVX3";
  std::string known;
  for (const std::int64_t t : compiled_targets()) {
    if (want == hwy::TargetName(t)) return t;
    known += known.empty() ? "" : ", ";
    known += hwy::TargetName(t);
  }
  METALEARN_CHECK(false, ValueError, "METALEARN_SIMD: unknown target '", env, "'; this build has ",
                  known, " (AVX512 also names AVX3)");
  return 0;
}

}  // namespace

namespace detail {

bool simd_ready() {
  static const bool ready = [] {
    const std::int64_t cap = requested_target();
    // Targets better than the cap have lower bits: disable them all.
    if (cap != 0) hwy::DisableTargets(cap - 1);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
    return true;
  }();
  return ready;
}

}  // namespace detail

std::string_view simd_target() {
  detail::simd_ready();
  const std::int64_t usable = hwy::SupportedTargets() & HWY_TARGETS;
  return usable == 0 ? std::string_view("EMU128") : hwy::TargetName(usable & -usable);
}

std::vector<std::string> simd_targets_supported() {
  std::vector<std::string> out;
  for (const std::int64_t t : compiled_targets()) {
    // SupportedTargets reflects a cap once one is applied; the CPU's own answer is
    // what this reports, so ask it before the cap where possible.
    if ((hwy::SupportedTargets() & t) != 0 || t == HWY_STATIC_TARGET)
      out.emplace_back(hwy::TargetName(t));
  }
  return out;
}

}  // namespace metalearn
