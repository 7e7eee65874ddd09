// The convolution GEMM: for float products whose b is not transposed (forward
// convolutions, col2im input gradients) on AVX2 targets, our own kernel that keeps every
// element's summation order (see ordered_gemm); otherwise OpenBLAS's sequential build
// when the library is configured with METALEARN_USE_OPENBLAS (1.15-1.35x Eigen's GEMM on
// most ConvNet4 shapes, one AVX2 core), Eigen's otherwise and for the shapes where
// Eigen's is faster. The sequential OpenBLAS keeps one threading layer (ours): a call
// never starts threads, and calls from the intra-op pool or from the tasks of a
// meta-batch run side by side.

#include "metalearn/tensor/gemm.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "metalearn/tensor/tensor.hpp"

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

#if defined(__AVX2__) && defined(__FMA__)
/// The products ordered_gemm takes: op(a) of at most 48K floats (192 KiB, so that the
/// packed a stays in L2 while the panels of b stream past it) and an inner dimension of
/// at most 1024 (a panel of b within 64 KiB). Larger products run at 0.78-1.0x OpenBLAS
/// in this kernel ([128, 576] x [576, 4096] 0.78x, [256, 1152] x [1152, 2048] 0.88x,
/// 512 x 512 x 512 1.0x; mean of repeated calls, one core), so they go to the library.
constexpr Index kOrderedMaxA = Index{48} << 10;
constexpr Index kOrderedMaxK = 1024;

/// ordered_gemm's tile of c: rows of a per packed block, columns of b per panel.
constexpr Index kTileRows = 6, kTileCols = 16;

/// One 6 x 16 tile of ordered_gemm: c[r][0, 16) = sum over kk in order of
/// pa[kk * 6 + r] * pb[kk * pitch + 0..16), twelve accumulators in registers (named,
/// not an array: an array of vectors passed around is kept on the stack). Masked reads
/// the last columns of b with masked loads; `full` stores all 16 columns, else the
/// masked ones; only the first `rows` rows are stored.
template <bool Masked>
[[gnu::always_inline]] inline void ordered_tile(const float* pa, const float* pb, Index pitch,
                                                Index k, __m256i mask0, __m256i mask1, float* c,
                                                Index ldc, Index rows, bool full) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (Index kk = 0; kk < k; ++kk, pa += kTileRows, pb += pitch) {
    const __m256 b0 = Masked ? _mm256_maskload_ps(pb, mask0) : _mm256_loadu_ps(pb);
    const __m256 b1 = Masked ? _mm256_maskload_ps(pb + 8, mask1) : _mm256_loadu_ps(pb + 8);
    __m256 x = _mm256_broadcast_ss(pa);
    c00 = _mm256_fmadd_ps(x, b0, c00);
    c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(pa + 1);
    c10 = _mm256_fmadd_ps(x, b0, c10);
    c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(pa + 2);
    c20 = _mm256_fmadd_ps(x, b0, c20);
    c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(pa + 3);
    c30 = _mm256_fmadd_ps(x, b0, c30);
    c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(pa + 4);
    c40 = _mm256_fmadd_ps(x, b0, c40);
    c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(pa + 5);
    c50 = _mm256_fmadd_ps(x, b0, c50);
    c51 = _mm256_fmadd_ps(x, b1, c51);
  }
  const __m256 acc[kTileRows][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                                    {c30, c31}, {c40, c41}, {c50, c51}};
  for (Index r = 0; r < rows; ++r) {
    float* d = c + r * ldc;
    if (full) {
      _mm256_storeu_ps(d, acc[r][0]);
      _mm256_storeu_ps(d + 8, acc[r][1]);
    } else {
      _mm256_maskstore_ps(d, mask0, acc[r][0]);
      _mm256_maskstore_ps(d + 8, mask1, acc[r][1]);
    }
  }
}

/// c = op(a) * b for float (b not transposed), in 6 x 16 tiles of c held in registers.
/// Every element of c is one chain of fused multiply-adds over k in order, the same
/// instructions whatever its row or column (the last columns of a row are masked
/// lanes of the same kernel), so equal columns of b give bit-equal columns of c. A
/// convolution relies on that: windows with the same contents (the blank areas of an
/// image) give equal outputs, and max-pool ties between them stay ties, with the first
/// element taking the gradient as in float64. OpenBLAS's kernel sums the columns of
/// one call in different orders (the first and last eight of a panel apart from the
/// rest): in one ConvNet4 Omniglot support set, 16 of the second layer's 2518 tied
/// windows stopped being ties. On the ConvNet4 shapes this kernel runs at 0.85-1.15x
/// OpenBLAS's speed with an inner dimension of 576, about twice its speed with the
/// first layer's 9, and 1.1-1.25x with a transposed a of 64 rows (the col2im input
/// gradient [576, 64]^T x [64, L], where OpenBLAS also zeroes c before adding into it;
/// one core).
///
/// op(a) is packed once into 6-row blocks laid out k-major ([k][6], rows past m zero);
/// b is read in panels of 16 columns, copied into a contiguous [k][16] buffer when k is
/// long enough for the copy to pay (the panel is then read once per block of a).
void ordered_gemm(bool trans_a, Index m, Index n, Index k, const float* a, Index lda,
                  const float* b, Index ldb, float* c, Index ldc) {
  constexpr Index kRows = kTileRows, kCols = kTileCols, kPackFrom = 64;
  const Index blocks = (m + kRows - 1) / kRows;
  const std::shared_ptr<float[]> apack = detail::allocate<float>(blocks * kRows * k);
  for (Index ib = 0; ib < blocks; ++ib) {
    float* dst = apack.get() + ib * kRows * k;
    const Index rows = std::min(kRows, m - ib * kRows);
    for (Index kk = 0; kk < k; ++kk) {
      for (Index r = 0; r < kRows; ++r) {
        const Index row = ib * kRows + r;
        dst[kk * kRows + r] = r >= rows ? 0.0F : trans_a ? a[kk * lda + row] : a[row * lda + kk];
      }
    }
  }
  const bool pack_b = k >= kPackFrom;
  const std::shared_ptr<float[]> bpack = detail::allocate<float>(pack_b ? k * kCols : 1);
  for (Index j = 0; j < n; j += kCols) {
    const Index width = std::min(kCols, n - j);
    alignas(32) std::int32_t lanes[kCols];
    for (Index t = 0; t < kCols; ++t) lanes[t] = t < width ? -1 : 0;
    const __m256i mask0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
    const __m256i mask1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes + 8));
    const bool full = width == kCols;
    const float* panel = b + j;
    Index pitch = ldb;
    if (pack_b) {
      for (Index kk = 0; kk < k; ++kk) {
        const float* src = b + kk * ldb + j;
        float* dst = bpack.get() + kk * kCols;
        _mm256_storeu_ps(dst, full ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, mask0));
        _mm256_storeu_ps(dst + 8,
                         full ? _mm256_loadu_ps(src + 8) : _mm256_maskload_ps(src + 8, mask1));
      }
      panel = bpack.get();
      pitch = kCols;
    }
    for (Index ib = 0; ib < blocks; ++ib) {
      const float* pa = apack.get() + ib * kRows * k;
      float* dst = c + ib * kRows * ldc + j;
      const Index rows = std::min(kRows, m - ib * kRows);
      if (!pack_b && !full) {
        ordered_tile<true>(pa, panel, pitch, k, mask0, mask1, dst, ldc, rows, full);
      } else {
        ordered_tile<false>(pa, panel, pitch, k, mask0, mask1, dst, ldc, rows, full);
      }
    }
  }
}
#endif

template <class T>
void gemm_impl(bool ta, bool tb, Index m, Index n, Index k, const T* a, Index lda, const T* b,
               Index ldb, T* c, Index ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (Index i = 0; i < m; ++i) std::fill_n(c + i * ldc, n, T(0));
    return;
  }
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (std::is_same_v<T, float>) {
    if (!tb && k <= kOrderedMaxK && m * k <= kOrderedMaxA) {
      ordered_gemm(ta, m, n, k, a, lda, b, ldb, c, ldc);
      return;
    }
  }
#endif
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

}  // namespace

std::string_view gemm_backend() noexcept {
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

}  // namespace detail
}  // namespace metalearn
