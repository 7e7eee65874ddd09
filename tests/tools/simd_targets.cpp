// Prints the instruction sets the library's kernels can run on this CPU, best first,
// one per line (before any METALEARN_SIMD cap): CI reruns the kernel suites under each.

#include <cstdio>

#include "metalearn/core/simd.hpp"

int main() {
  for (const auto& target : metalearn::simd_targets_supported())
    std::printf("%s\n", target.c_str());
  return 0;
}
