// The convolution GEMM: for products whose b is not transposed (forward convolutions,
// col2im input gradients) up to a size, our own kernel that keeps every element's
// summation order, compiled for every instruction set (src/tensor/ordered_gemm.cpp);
// otherwise OpenBLAS's sequential build
// when the library is configured with METALEARN_USE_OPENBLAS (1.15-1.35x Eigen's GEMM on
// most ConvNet4 shapes, one AVX2 core), Eigen's otherwise and for the shapes where
// Eigen's is faster. The sequential OpenBLAS keeps one threading layer (ours): a call
// never starts threads, and calls from the intra-op pool or from the tasks of a
// meta-batch run side by side.
//
// Our kernel takes every product instead when the library GEMM at hand would run
// narrower vectors than the CPU has (see own_kernel_takes_all).

#include "metalearn/tensor/gemm.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "metalearn/core/eigen.hpp"

#include "metalearn/core/simd.hpp"
#include "metalearn/tensor/tensor.hpp"
#include "src/tensor/ordered_gemm.hpp"

#ifdef METALEARN_WITH_OPENBLAS
#include <cblas.h>
#endif

namespace metalearn {
namespace {

template <class T>
using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ConstView = Eigen::Map<const RowMajor<T>, 0, Eigen::OuterStride<>>;
template <class T>
using View = Eigen::Map<RowMajor<T>, 0, Eigen::OuterStride<>>;

template <class T>
void eigen_gemm(bool ta, bool tb, Index m, Index n, Index k, const T* a, Index lda, const T* b,
                Index ldb, T* c, Index ldc) {
  View<T> cm(c, m, n, Eigen::OuterStride<>(ldc));
  const ConstView<T> am(a, ta ? k : m, ta ? m : k, Eigen::OuterStride<>(lda));
  const ConstView<T> bm(b, tb ? n : k, tb ? k : n, Eigen::OuterStride<>(ldb));
  if (!ta && !tb) {
    cm.noalias() = am * bm;
  } else if (ta && !tb) {
    cm.noalias() = am.transpose() * bm;
  } else if (!ta && tb) {
    cm.noalias() = am * bm.transpose();
  } else {
    cm.noalias() = am.transpose() * bm.transpose();
  }
}

#ifdef METALEARN_WITH_OPENBLAS
bool fits_blas_int(std::initializer_list<Index> values) {
  return std::all_of(values.begin(), values.end(), [](Index v) {
    return v <= static_cast<Index>(std::numeric_limits<blasint>::max());
  });
}

CBLAS_TRANSPOSE op(bool t) {
  return t ? CblasTrans : CblasNoTrans;
}

void blas_gemm(bool ta, bool tb, Index m, Index n, Index k, const float* a, Index lda,
               const float* b, Index ldb, float* c, Index ldc) {
  cblas_sgemm(CblasRowMajor, op(ta), op(tb), static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), 1.0F, a, static_cast<blasint>(lda), b,
              static_cast<blasint>(ldb), 0.0F, c, static_cast<blasint>(ldc));
}

void blas_gemm(bool ta, bool tb, Index m, Index n, Index k, const double* a, Index lda,
               const double* b, Index ldb, double* c, Index ldc) {
  cblas_dgemm(CblasRowMajor, op(ta), op(tb), static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), 1.0, a, static_cast<blasint>(lda), b,
              static_cast<blasint>(ldb), 0.0, c, static_cast<blasint>(ldc));
}
#endif

#ifdef METALEARN_WITH_OPENBLAS
/// Whether OpenBLAS runs one of its generic kernels: it names the core it chose, and
/// one that it does not recognise (Debian 12's OpenBLAS 0.3.21 on a family 6 model 207
/// Xeon, say) gets the SSE3 "Prescott" kernels.
bool blas_core_is_generic() {
  std::string core = openblas_get_corename();
  std::transform(core.begin(), core.end(), core.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  static constexpr std::array<std::string_view, 11> kGeneric = {
      "prescott", "core2",      "penryn",    "dunnington", "nehalem", "atom",
      "katmai",   "coppermine", "northwood", "banias",     "unknown"};
  return std::find(kGeneric.begin(), kGeneric.end(), core) != kGeneric.end();
}
#endif

/// Whether our kernel takes every product: the kernels run AVX2 or AVX-512 on this
/// CPU while the library GEMM would not, because OpenBLAS runs generic SSE3 kernels
/// (2-3x slower than ours on the ConvNet4 products of such a CPU) or, without
/// OpenBLAS, Eigen was compiled for baseline x86-64 (no AVX). Decided once per
/// process; it depends on the CPU, the build and METALEARN_SIMD only.
bool own_kernel_takes_all() {
  static const bool all = [] {
    const bool wide = simd_target().substr(0, 3) == "AVX";
#ifdef METALEARN_WITH_OPENBLAS
    return wide && blas_core_is_generic();
#elif defined(EIGEN_VECTORIZE_AVX)
    return false;
#else
    return wide;
#endif
  }();
  return all;
}

template <class T>
void gemm_impl(bool ta, bool tb, Index m, Index n, Index k, const T* a, Index lda, const T* b,
               Index ldb, T* c, Index ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (Index i = 0; i < m; ++i) std::fill_n(c + i * ldc, n, T(0));
    return;
  }
  if (own_kernel_takes_all()) {
    detail::ordered_gemm(
        {.trans_a = ta, .trans_b = tb, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb, .ldc = ldc},
        a, b, c);
    return;
  }
  if (!tb && detail::ordered_gemm_takes(m, k, sizeof(T))) {
    detail::ordered_gemm(
        {.trans_a = ta, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb, .ldc = ldc}, a, b, c);
    return;
  }
#ifdef METALEARN_WITH_OPENBLAS
  // OpenBLAS gains 1.15-1.35x where both the inner dimension and the rows are long;
  // with a short inner dimension (a first convolution layer's 9 taps) or few rows its
  // kernels lose to Eigen's (0.7x at k = 9, 0.9x at m = 9). Measured on the ConvNet4
  // shapes, one AVX2 core. The choice depends on the shape only.
  if (k >= 48 && m >= 16 && fits_blas_int({m, n, k, lda, ldb, ldc})) {
    blas_gemm(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
    return;
  }
#endif
  eigen_gemm(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
}

template <class T>
void gemm_batched_impl(const T* a, Index a_rows, Index a_cols, Index a_stride, bool ta, const T* b,
                       Index b_rows, Index b_cols, Index b_stride, bool tb, T* out, Index batch) {
  const Index m = ta ? a_cols : a_rows, k = ta ? a_rows : a_cols, n = tb ? b_rows : b_cols;
  if (batch <= 0 || m <= 0 || n <= 0) return;
  if (k > 0 && detail::ordered_gemm_takes(m, k, sizeof(T))) {
    detail::ordered_gemm({.trans_a = ta,
                          .trans_b = tb,
                          .m = m,
                          .n = n,
                          .k = k,
                          .lda = a_cols,
                          .ldb = b_cols,
                          .ldc = n,
                          .batch = batch,
                          .stride_a = a_stride,
                          .stride_b = b_stride,
                          .stride_c = m * n},
                         a, b, out);
    return;
  }
  for (Index i = 0; i < batch; ++i) {
    gemm_impl(ta, tb, m, n, k, a + i * a_stride, a_cols, b + i * b_stride, b_cols, out + i * m * n,
              n);
  }
}

}  // namespace

std::string_view gemm_backend() noexcept {
  try {
    if (own_kernel_takes_all()) {
#ifdef METALEARN_WITH_OPENBLAS
      return "metalearn (OpenBLAS runs generic kernels on this CPU)";
#else
      return "metalearn (Eigen built without AVX)";
#endif
    }
  } catch (...) {  // an invalid METALEARN_SIMD: the kernels report it when they run
  }
#ifdef METALEARN_WITH_OPENBLAS
  return openblas_get_parallel() == 0 ? "openblas (sequential)" : "openblas (threaded)";
#else
  return "eigen";
#endif
}

namespace detail {

void gemm(bool trans_a, bool trans_b, Index m, Index n, Index k, const float* a, Index lda,
          const float* b, Index ldb, float* c, Index ldc) {
  gemm_impl(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc);
}

void gemm(bool trans_a, bool trans_b, Index m, Index n, Index k, const double* a, Index lda,
          const double* b, Index ldb, double* c, Index ldc) {
  gemm_impl(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc);
}

void gemm_batched(const float* a, Index a_rows, Index a_cols, Index a_stride, bool ta,
                  const float* b, Index b_rows, Index b_cols, Index b_stride, bool tb, float* out,
                  Index batch) {
  gemm_batched_impl(a, a_rows, a_cols, a_stride, ta, b, b_rows, b_cols, b_stride, tb, out, batch);
}

void gemm_batched(const double* a, Index a_rows, Index a_cols, Index a_stride, bool ta,
                  const double* b, Index b_rows, Index b_cols, Index b_stride, bool tb, double* out,
                  Index batch) {
  gemm_batched_impl(a, a_rows, a_cols, a_stride, ta, b, b_rows, b_cols, b_stride, tb, out, batch);
}

}  // namespace detail
}  // namespace metalearn
