#pragma once
/// @file
/// Eigen, included once for the whole library. GCC 12 reports -Wmaybe-uninitialized
/// inside its own AVX-512 intrinsics (avx512fintrin.h, _mm512_undefined_pd) wherever
/// Eigen's GEMM kernel is inlined into code compiled for AVX-512 (-march=x86-64-v4 or
/// -march=native on such a CPU): a false positive in third-party code, silenced for
/// the headers included here only, so that every build is clean with -Werror.

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Cholesky>
#include <Eigen/Core>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
