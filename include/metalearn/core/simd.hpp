#pragma once
/// @file
/// Which instruction set the library's hand-written kernels run on. They are compiled
/// for every target of the architecture (x86-64: SSE4, AVX2 with FMA, AVX-512; ARM64:
/// NEON; portable C++ everywhere) and the best one the CPU supports is chosen at run
/// time, so one build runs on any CPU of its architecture.
///
/// METALEARN_SIMD caps the choice for the whole process: set it to a target name
/// ("AVX3" or "avx512", "AVX2", "SSE4", "NEON", "SCALAR", ...) to run the best target
/// that is no better than it, for example to check that every target gives the same
/// results. It is read once, when the first kernel runs (or simd_target() is called);
/// an unknown name throws ValueError there.

#include <string>
#include <string_view>
#include <vector>

#include "metalearn/core/export.hpp"

namespace metalearn {

/// The target the kernels run on in this process, e.g.\ "AVX3" (AVX-512), "AVX2",
/// "SSE4", "NEON", or "SCALAR"/"EMU128" (portable C++).
[[nodiscard]] METALEARN_API std::string_view simd_target();

/// The targets the library was compiled for that this CPU supports, best first,
/// before any METALEARN_SIMD cap.
[[nodiscard]] METALEARN_API std::vector<std::string> simd_targets_supported();

namespace detail {
/// Applies METALEARN_SIMD once; every kernel entry point calls it first.
METALEARN_API bool simd_ready();
}  // namespace detail

}  // namespace metalearn
