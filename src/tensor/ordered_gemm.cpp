// The order-keeping GEMM kernel (see ordered_gemm in src/tensor/gemm.cpp), compiled once
// per instruction set by Highway's foreach_target and dispatched at run time.

// clang-format off
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/tensor/ordered_gemm.cpp"
#include <hwy/foreach_target.h>
#include <hwy/highway.h>
// clang-format on

#include <algorithm>
#include <cstring>
#include <memory>

#include "metalearn/core/simd.hpp"
#include "metalearn/tensor/tensor.hpp"
#include "src/tensor/ordered_gemm.hpp"

HWY_BEFORE_NAMESPACE();
namespace metalearn::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

/// Rows of c per tile (and per packed block of a).
constexpr Index kTileRows = 6;
/// Inner dimensions at least this long have each panel of b copied into a contiguous
/// buffer first (it is then read once per block of a).
constexpr Index kPackFrom = 64;
/// Bytes of a packed panel of b: the inner dimension is taken in slices whose panel
/// fits this (with the 6-row slice of a, well inside a 32 KiB L1 data cache). A slice
/// continues from the partial sums stored by the previous one, so every element is
/// still one chain of multiply-adds over k in order.
constexpr std::size_t kPanelBytes = 24 << 10;
/// Bytes of a packed a that the panels of b stream past (see ordered_gemm_takes).
constexpr std::size_t kPackedABytes = 192 << 10;

/// One kTileRows x 2*Lanes tile: c[r][0, width) = sum over kk in order of
/// pa[kk * 6 + r] * pb[kk * pitch + 0..2*Lanes), twelve accumulators in registers
/// (named, not an array: an array of vectors passed around is kept on the stack),
/// starting from zero or, with `accumulate`, from the values in c. Only the first
/// `rows` rows and `width` columns are read and stored.
template <class D>
HWY_INLINE void tile(D d, const hn::TFromD<D>* HWY_RESTRICT pa,
                     const hn::TFromD<D>* HWY_RESTRICT pb, Index pitch, Index k, hn::TFromD<D>* c,
                     Index ldc, Index rows, Index width, bool accumulate) {
  using T = hn::TFromD<D>;
  const auto lanes = static_cast<Index>(hn::Lanes(d));
  auto c00 = hn::Zero(d), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  auto c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  if (accumulate) {
    const auto load = [&](Index r, decltype(c00)& v0, decltype(c00)& v1) {
      if (r >= rows) return;
      const T* src = c + r * ldc;
      if (width == 2 * lanes) {
        v0 = hn::LoadU(d, src);
        v1 = hn::LoadU(d, src + lanes);
      } else {
        HWY_ALIGN T buf[2 * hn::MaxLanes(d)] = {};
        std::memcpy(buf, src, static_cast<std::size_t>(width) * sizeof(T));
        v0 = hn::Load(d, buf);
        v1 = hn::Load(d, buf + lanes);
      }
    };
    load(0, c00, c01);
    load(1, c10, c11);
    load(2, c20, c21);
    load(3, c30, c31);
    load(4, c40, c41);
    load(5, c50, c51);
  }
  for (Index kk = 0; kk < k; ++kk, pa += kTileRows, pb += pitch) {
    const auto b0 = hn::LoadU(d, pb);
    const auto b1 = hn::LoadU(d, pb + lanes);
    auto x = hn::Set(d, pa[0]);
    c00 = hn::MulAdd(x, b0, c00);
    c01 = hn::MulAdd(x, b1, c01);
    x = hn::Set(d, pa[1]);
    c10 = hn::MulAdd(x, b0, c10);
    c11 = hn::MulAdd(x, b1, c11);
    x = hn::Set(d, pa[2]);
    c20 = hn::MulAdd(x, b0, c20);
    c21 = hn::MulAdd(x, b1, c21);
    x = hn::Set(d, pa[3]);
    c30 = hn::MulAdd(x, b0, c30);
    c31 = hn::MulAdd(x, b1, c31);
    x = hn::Set(d, pa[4]);
    c40 = hn::MulAdd(x, b0, c40);
    c41 = hn::MulAdd(x, b1, c41);
    x = hn::Set(d, pa[5]);
    c50 = hn::MulAdd(x, b0, c50);
    c51 = hn::MulAdd(x, b1, c51);
  }
  const auto store = [&](Index r, decltype(c00) v0, decltype(c00) v1) {
    if (r >= rows) return;
    T* dst = c + r * ldc;
    if (width == 2 * lanes) {
      hn::StoreU(v0, d, dst);
      hn::StoreU(v1, d, dst + lanes);
    } else {
      HWY_ALIGN T buf[2 * hn::MaxLanes(d)];
      hn::Store(v0, d, buf);
      hn::Store(v1, d, buf + lanes);
      std::memcpy(dst, buf, static_cast<std::size_t>(width) * sizeof(T));
    }
  };
  store(0, c00, c01);
  store(1, c10, c11);
  store(2, c20, c21);
  store(3, c30, c31);
  store(4, c40, c41);
  store(5, c50, c51);
}

template <class T>
void ordered_gemm_impl(bool trans_a, bool trans_b, Index m, Index n, Index k, const T* a, Index lda,
                       const T* b, Index ldb, T* c, Index ldc) {
  const hn::ScalableTag<T> d;
  const auto cols = 2 * static_cast<Index>(hn::Lanes(d));
  const Index blocks = (m + kTileRows - 1) / kTileRows;
  const std::shared_ptr<T[]> apack = detail::allocate<T>(blocks * kTileRows * k);
  for (Index ib = 0; ib < blocks; ++ib) {
    T* dst = apack.get() + ib * kTileRows * k;
    const Index rows = std::min(kTileRows, m - ib * kTileRows);
    for (Index kk = 0; kk < k; ++kk) {
      for (Index r = 0; r < kTileRows; ++r) {
        const Index row = ib * kTileRows + r;
        dst[kk * kTileRows + r] = r >= rows ? T(0)
                                  : trans_a ? a[kk * lda + row]
                                            : a[row * lda + kk];
      }
    }
  }
  // The slice of k whose panel fits kPanelBytes (at least kPackFrom, so that short
  // inner dimensions stay one slice and may be read in place).
  const Index slice = std::max(
      kPackFrom, static_cast<Index>(kPanelBytes / (sizeof(T) * static_cast<std::size_t>(cols))));
  const Index kc_max = std::min(k, slice);
  const std::shared_ptr<T[]> bpack = detail::allocate<T>(kc_max * cols);
  // Multiplies the slice [k0, k0 + kc) of every row block by columns [j, j + width) of b.
  const auto product = [&](Index j, Index k0) {
    const Index width = std::min(cols, n - j);
    const Index kc = std::min(kc_max, k - k0);
    const T* panel = b + k0 * ldb + j;
    Index pitch = ldb;
    // A panel is read in place when it is whole, untransposed and short; otherwise it
    // is copied into [kc][cols], zero past the last column (those lanes are computed
    // and not stored, so every stored element is the same chain of multiply-adds).
    if (trans_b || width < cols || k >= kPackFrom) {
      T* dst = bpack.get();
      if (trans_b) {
        for (Index t = 0; t < width; ++t) {
          const T* src = b + (j + t) * ldb + k0;
          for (Index kk = 0; kk < kc; ++kk) dst[kk * cols + t] = src[kk];
        }
        for (Index kk = 0; kk < kc; ++kk)
          std::fill(dst + kk * cols + width, dst + (kk + 1) * cols, T(0));
      } else {
        for (Index kk = 0; kk < kc; ++kk) {
          const T* src = b + (k0 + kk) * ldb + j;
          std::copy_n(src, width, dst + kk * cols);
          std::fill(dst + kk * cols + width, dst + (kk + 1) * cols, T(0));
        }
      }
      panel = dst;
      pitch = cols;
    }
    for (Index ib = 0; ib < blocks; ++ib) {
      tile(d, apack.get() + ib * kTileRows * k + k0 * kTileRows, panel, pitch, kc,
           c + ib * kTileRows * ldc + j, ldc, std::min(kTileRows, m - ib * kTileRows), width,
           k0 > 0);
    }
  };
  // Either order adds the slices of every element in order. A packed a that stays in
  // L2 is read once per panel of columns, c written once; a larger one (a weight
  // gradient's long inner dimension) is read once, slice by slice, while c, then
  // small, takes the partial sums.
  if (static_cast<std::size_t>(m * k) * sizeof(T) <= kPackedABytes) {
    for (Index j = 0; j < n; j += cols) {
      for (Index k0 = 0; k0 < k; k0 += kc_max) product(j, k0);
    }
  } else {
    for (Index k0 = 0; k0 < k; k0 += kc_max) {
      for (Index j = 0; j < n; j += cols) product(j, k0);
    }
  }
}

void ordered_gemm_f32(const OrderedGemm& p, const float* a, const float* b, float* c) {
  for (Index i = 0; i < p.batch; ++i) {
    ordered_gemm_impl(p.trans_a, p.trans_b, p.m, p.n, p.k, a + i * p.stride_a, p.lda,
                      b + i * p.stride_b, p.ldb, c + i * p.stride_c, p.ldc);
  }
}
void ordered_gemm_f64(const OrderedGemm& p, const double* a, const double* b, double* c) {
  for (Index i = 0; i < p.batch; ++i) {
    ordered_gemm_impl(p.trans_a, p.trans_b, p.m, p.n, p.k, a + i * p.stride_a, p.lda,
                      b + i * p.stride_b, p.ldb, c + i * p.stride_c, p.ldc);
  }
}

}  // namespace metalearn::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace metalearn::detail {

HWY_EXPORT(ordered_gemm_f32);
HWY_EXPORT(ordered_gemm_f64);

void ordered_gemm(const OrderedGemm& p, const float* a, const float* b, float* c) {
  simd_ready();
  HWY_DYNAMIC_DISPATCH(ordered_gemm_f32)(p, a, b, c);
}
void ordered_gemm(const OrderedGemm& p, const double* a, const double* b, double* c) {
  simd_ready();
  HWY_DYNAMIC_DISPATCH(ordered_gemm_f64)(p, a, b, c);
}

}  // namespace metalearn::detail
#endif  // HWY_ONCE
