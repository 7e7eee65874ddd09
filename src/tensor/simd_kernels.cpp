// The element loops of conv2d, max_pool2d, batch norm, Adam, sigmoid, tanh and the GRU gates
// (declared in metalearn/tensor/detail/simd_kernels.hpp), compiled once per instruction set by
// Highway's foreach_target and dispatched at run time. Everything between
// HWY_BEFORE_NAMESPACE and HWY_AFTER_NAMESPACE is compiled for each target with that
// target's code generation, so the plain loops below are vectorized for it too; the
// explicit vectors are the ones a compiler does not find by itself (stride-2 window
// maxima and their interleaved scatter).

// clang-format off
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/tensor/simd_kernels.cpp"
#include <hwy/foreach_target.h>
#include <hwy/highway.h>
// clang-format on

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "metalearn/core/simd.hpp"
#include "metalearn/tensor/detail/simd_kernels.hpp"
#include "metalearn/tensor/tensor.hpp"

HWY_BEFORE_NAMESPACE();
namespace metalearn::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

/// Rows at least this long are copied or filled with a library call.
constexpr Index kWideRow = 32;

/// d[0, n) = s[0, n) for the short rows of small images, without a library call per
/// row (the call costs more than copying a 3- to 14-element row). A row is covered by
/// fixed-size moves whose last one ends at n, overlapping the one before it where n is
/// not a multiple of its size (s and d do not overlap): an 11-float row is two moves
/// of 8, not 8 + 2 + 1. Each fixed-size memcpy compiles to the target's widest move.
template <class T>
HWY_INLINE void copy_row(const T* s, Index n, T* d) {
  const auto move8 = [&](Index at) { std::memcpy(d + at, s + at, 8 * sizeof(T)); };
  const auto move4 = [&](Index at) { std::memcpy(d + at, s + at, 4 * sizeof(T)); };
  const auto move2 = [&](Index at) { std::memcpy(d + at, s + at, 2 * sizeof(T)); };
  if (n >= kWideRow) {
    std::copy_n(s, n, d);
  } else if (n >= 8) {
    for (Index x = 0; x + 8 < n; x += 8) move8(x);
    move8(n - 8);
  } else if (n >= 4) {
    move4(0);
    move4(n - 4);
  } else if (n >= 2) {
    move2(0);
    move2(n - 2);
  } else if (n == 1) {
    d[0] = s[0];
  }
}

/// d[0, n) = 0, short lengths without a library call.
template <class T>
HWY_INLINE void zero_row(Index n, T* d) {
  static constexpr T kZeros[kWideRow] = {};
  if (n >= kWideRow) {
    std::fill_n(d, n, T(0));
  } else {
    copy_row(kZeros, n, d);
  }
}

/// A workspace of n elements whose storage is rounded up to a power of two bytes, so
/// that the workspaces of every layer share a few block sizes in the thread's block
/// cache.
template <class T>
Tensor<T> workspace(Index n) {
  const auto bytes = static_cast<std::size_t>(std::max<Index>(n, 1)) * sizeof(T);
  const auto capacity = static_cast<Index>(std::bit_ceil(bytes) / sizeof(T));
  return Tensor<T>::from_storage(allocate<T>(capacity), Shape{n});
}

/// The `nb` images of a convolution as its windows read them: [nb, C, H+2p, W+2p],
/// the images themselves when unpadded, else a copy with a zero border, so that every
/// window lies inside and im2col and col2im need no edge cases.
template <class T>
struct BorderedImages {
  Index pitch = 0, plane = 0;
  Tensor<T> padded;  // defined when the geometry pads

  BorderedImages(const T* x, const Conv2dGeometry& g, Index nb)
      : pitch(g.width + 2 * g.padding), plane((g.height + 2 * g.padding) * pitch) {
    if (g.padding > 0) {
      padded = workspace<T>(nb * g.channels * plane);
      T* out = padded.data();
      // One fill for all borders, then the rows: a fill per border row would be a
      // library call per one or two elements.
      std::fill_n(out, nb * g.channels * plane, T(0));
      for (Index p = 0; p < nb * g.channels; ++p) {
        T* d = out + p * plane + g.padding * pitch + g.padding;
        const T* src = x + p * g.height * g.width;
        for (Index y = 0; y < g.height; ++y) copy_row(src + y * g.width, g.width, d + y * pitch);
      }
    }
  }
  /// Element (b, c, 0, 0) of the bordered images, given the images themselves.
  template <class P>
  P* at(P* images, const Conv2dGeometry& g, Index b, Index c) const {
    P* base = padded.defined() ? padded.data() : images;
    return base + (b * g.channels + c) * plane;
  }
};

/// Whether a convolution keeps the image size at stride 1 (a (2p+1) x (2p+1) kernel at
/// padding p), so that each im2col row is a shifted copy of the image plane.
inline bool keeps_size(const Conv2dGeometry& g) {
  return g.stride == 1 && g.kernel_h == 2 * g.padding + 1 && g.kernel_w == 2 * g.padding + 1;
}

/// im2col for keeps_size() geometries, from the images themselves (no bordered copy).
/// Row (c, i, j) of image b is channel c's plane shifted by di = i - p rows and
/// dj = j - p columns: output (y, q) reads input (y + di, q + dj), which in the flat
/// plane is one offset, di * W + dj. So the rows whose source row is inside are one
/// contiguous copy, and only the rows shifted off the plane and the |dj| columns per
/// row that the offset wraps into the neighbouring row are zeroed.
template <class T>
void im2col_same_size(const T* x, const Conv2dGeometry& g, Index nb, T* cols) {
  const Index h = g.height, w = g.width, l = h * w, ncols = nb * l, p = g.padding;
  for (Index c = 0; c < g.channels; ++c) {
    for (Index i = 0; i < g.kernel_h; ++i) {
      const Index di = i - p;
      const Index y0 = std::clamp<Index>(-di, 0, h), y1 = std::clamp<Index>(h - di, y0, h);
      for (Index j = 0; j < g.kernel_w; ++j) {
        const Index dj = j - p, shift = di * w + dj;
        // The first and last copied elements may be wrapped positions whose source
        // lies outside the plane: they are zeroed below, so they are not copied.
        const Index k0 = y0 * w + std::max<Index>(0, -dj), k1 = y1 * w - std::max<Index>(0, dj);
        T* row = cols + ((c * g.kernel_h + i) * g.kernel_w + j) * ncols;
        const Index q0 = dj > 0 ? w - dj : 0, q1 = dj > 0 ? w : -dj;
        for (Index b = 0; b < nb; ++b) {
          const T* src = x + (b * g.channels + c) * l;
          T* d = row + b * l;
          zero_row(y0 * w, d);
          if (k1 > k0) copy_row(src + k0 + shift, k1 - k0, d + k0);
          zero_row(l - y1 * w, d + y1 * w);
          for (Index q = q0; q < q1; ++q) {
            for (Index y = y0; y < y1; ++y) d[y * w + q] = T(0);
          }
        }
      }
    }
  }
}

/// im2col of any geometry, from the bordered images: output row y of image b is input
/// row y*stride + i, read from column j on at the stride.
template <class T>
void im2col_bordered(const T* x, const Conv2dGeometry& g, Index nb, T* cols) {
  const Index oh = g.out_h(), ow = g.out_w(), l = oh * ow, ncols = nb * l, st = g.stride;
  const BorderedImages<T> src(x, g, nb);
  for (Index c = 0; c < g.channels; ++c) {
    for (Index i = 0; i < g.kernel_h; ++i) {
      for (Index j = 0; j < g.kernel_w; ++j) {
        T* row = cols + ((c * g.kernel_h + i) * g.kernel_w + j) * ncols;
        for (Index b = 0; b < nb; ++b) {
          const T* s = src.at(x, g, b, c) + i * src.pitch + j;
          T* d = row + b * l;
          for (Index y = 0; y < oh; ++y) {
            const T* sy = s + y * st * src.pitch;
            T* dy = d + y * ow;
            if (st == 1) {
              copy_row(sy, ow, dy);
            } else {
              for (Index q = 0; q < ow; ++q) dy[q] = sy[q * st];
            }
          }
        }
      }
    }
  }
}

template <class T>
void im2col_impl(const T* x, const Conv2dGeometry& g, Index nb, T* cols) {
  if (keeps_size(g)) {
    im2col_same_size(x, g, nb, cols);
  } else {
    im2col_bordered(x, g, nb, cols);
  }
}

void im2col_f32(const float* x, const Conv2dGeometry& g, Index nb, float* cols) {
  im2col_impl(x, g, nb, cols);
}
void im2col_f64(const double* x, const Conv2dGeometry& g, Index nb, double* cols) {
  im2col_impl(x, g, nb, cols);
}

/// d[0, n) += s[0, n): whole vectors, then a half-width vector where one fits, then
/// one at a time; one rounding per element whichever way it is added.
template <class T>
HWY_INLINE void add_row(const T* HWY_RESTRICT s, T* HWY_RESTRICT d, Index n) {
  const hn::CappedTag<T, 8> dv;
  const auto lanes = static_cast<Index>(hn::Lanes(dv));
  Index x = 0;
  for (; x + lanes <= n; x += lanes) {
    hn::StoreU(hn::Add(hn::LoadU(dv, d + x), hn::LoadU(dv, s + x)), dv, d + x);
  }
  if constexpr (HWY_TARGET != HWY_SCALAR) {
    const hn::CappedTag<T, 4> dh;
    const auto half = static_cast<Index>(hn::Lanes(dh));
    if (half < lanes && x + half <= n) {
      hn::StoreU(hn::Add(hn::LoadU(dh, d + x), hn::LoadU(dh, s + x)), dh, d + x);
      x += half;
    }
  }
  for (; x < n; ++x) d[x] += s[x];
}

template <class T>
void col2im_impl(const T* cols, const Conv2dGeometry& g, Index nb, T* x) {
  const Index oh = g.out_h(), ow = g.out_w(), l = oh * ow, ncols = nb * l, st = g.stride;
  BorderedImages<T> dst(x, g, nb);
  for (Index c = 0; c < g.channels; ++c) {
    for (Index i = 0; i < g.kernel_h; ++i) {
      for (Index j = 0; j < g.kernel_w; ++j) {
        const T* row = cols + ((c * g.kernel_h + i) * g.kernel_w + j) * ncols;
        for (Index b = 0; b < nb; ++b) {
          T* d = dst.at(x, g, b, c) + i * dst.pitch + j;
          const T* s = row + b * l;
          if (st == 1) {
            for (Index y = 0; y < oh; ++y) add_row(s + y * ow, d + y * dst.pitch, ow);
            continue;
          }
          for (Index y = 0; y < oh; ++y) {
            T* dy = d + y * st * dst.pitch;
            const T* sy = s + y * ow;
            for (Index q = 0; q < ow; ++q) dy[q * st] += sy[q];
          }
        }
      }
    }
  }
  if (dst.padded.defined()) {  // the interior back into x
    for (Index p = 0; p < nb * g.channels; ++p) {
      const T* src = dst.padded.data() + p * dst.plane + g.padding * dst.pitch + g.padding;
      T* d = x + p * g.height * g.width;
      for (Index y = 0; y < g.height; ++y) copy_row(src + y * dst.pitch, g.width, d + y * g.width);
    }
  }
}

void col2im_f32(const float* cols, const Conv2dGeometry& g, Index nb, float* x) {
  col2im_impl(cols, g, nb, x);
}
void col2im_f64(const double* cols, const Conv2dGeometry& g, Index nb, double* x) {
  col2im_impl(cols, g, nb, x);
}

template <class T>
void gather_impl(const T* y, Index o, Index l, Index nb, T* m) {
  for (Index b = 0; b < nb; ++b) {
    for (Index c = 0; c < o; ++c) copy_row(y + (b * o + c) * l, l, m + c * nb * l + b * l);
  }
}

void gather_f32(const float* y, Index o, Index l, Index nb, float* m) {
  gather_impl(y, o, l, nb, m);
}
void gather_f64(const double* y, Index o, Index l, Index nb, double* m) {
  gather_impl(y, o, l, nb, m);
}

/// The first maximal element of every window of one plane: its code and value. K > 0
/// fixes the window size at compile time. Selects, not branches: which element wins
/// depends on the data and would be mispredicted half the time.
template <Index K, class T, class C>
void window_argmax(const T* p, Index w, Index oh, Index ow, Index k, Index s, C* out, T* values) {
  const Index kk = K > 0 ? K : k;
  for (Index y = 0; y < oh; ++y) {
    for (Index z = 0; z < ow; ++z) {
      const T* corner = p + y * s * w + z * s;
      Index best = 0;
      T bv = corner[0];
      for (Index i = 0; i < kk; ++i) {
        for (Index j = 0; j < kk; ++j) {
          const T v = corner[i * w + j];
          const bool wins = v > bv;
          best = wins ? i * kk + j : best;
          bv = wins ? v : bv;
        }
      }
      *out++ = static_cast<C>(best);
      *values++ = bv;
    }
  }
}

/// Windows z .. z + Lanes(d) - 1 of one row of 2x2 stride-2 windows over input rows r0
/// and r1: the deinterleaving loads split each row into its even and odd columns, so
/// the four candidates of the windows are four vectors, compared in the scalar order
/// ((0,0), (0,1), (1,0), (1,1); strictly greater wins, so ties and NaNs keep the
/// earlier element). The loads end at column 2 * (z + Lanes) - 1.
template <class D, class C>
HWY_INLINE void argmax_2x2_group(D d, const hn::TFromD<D>* r0, const hn::TFromD<D>* r1, Index z,
                                 C* codes, hn::TFromD<D>* values) {
  using T = hn::TFromD<D>;
  const hn::RebindToSigned<D> di;
  using I = hn::TFromD<decltype(di)>;
  hn::Vec<D> c0, c1, c2, c3;
  hn::LoadInterleaved2(d, r0 + 2 * z, c0, c1);
  hn::LoadInterleaved2(d, r1 + 2 * z, c2, c3);
  hn::Vec<D> bv = c0;
  auto bi = hn::Zero(di);
  const auto take = [&](const hn::Vec<D>& cand, I t) {
    const auto wins = hn::Gt(cand, bv);
    bv = hn::IfThenElse(wins, cand, bv);
    bi = hn::IfThenElse(hn::RebindMask(di, wins), hn::Set(di, t), bi);
  };
  take(c1, 1);
  take(c2, 2);
  take(c3, 3);
  hn::StoreU(bv, d, values + z);
  if constexpr (std::is_same_v<C, std::uint8_t> && sizeof(T) == 4) {
    const hn::Rebind<std::uint8_t, D> d8;
    hn::StoreU(hn::DemoteTo(d8, bi), d8, codes + z);
  } else {
    HWY_ALIGN I lanes[hn::MaxLanes(di)];
    hn::Store(bi, di, lanes);
    for (std::size_t t = 0; t < hn::Lanes(di); ++t) codes[z + t] = static_cast<C>(lanes[t]);
  }
}

/// The windows of a row of 2x2 stride-2 windows in groups of Lanes(d); the last group
/// overlaps the one before it where ow is not a multiple of the group and writes the
/// same values again. Needs ow >= Lanes(d).
template <class D, class C>
HWY_INLINE void argmax_2x2_row(D d, const hn::TFromD<D>* r0, const hn::TFromD<D>* r1, Index ow,
                               C* codes, hn::TFromD<D>* values) {
  const auto lanes = static_cast<Index>(hn::Lanes(d));
  Index z = 0;
  for (; z + lanes <= ow; z += lanes) argmax_2x2_group(d, r0, r1, z, codes, values);
  if (z < ow) argmax_2x2_group(d, r0, r1, ow - lanes, codes, values);
}

template <class T, class C>
void pool_impl(const T* p, Index w, Index oh, Index ow, Index k, Index s, C* out, T* values) {
  if (k == 2 && s == 2) {
    if constexpr (HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128) {
      const hn::CappedTag<T, 8> d8;
      const hn::CappedTag<T, 4> d4;
      const auto wide = static_cast<Index>(hn::Lanes(d8)),
                 narrow = static_cast<Index>(hn::Lanes(d4));
      if (ow >= narrow) {
        for (Index y = 0; y < oh; ++y) {
          const T* r0 = p + 2 * y * w;
          if (ow >= wide) {
            argmax_2x2_row(d8, r0, r0 + w, ow, out + y * ow, values + y * ow);
          } else {
            argmax_2x2_row(d4, r0, r0 + w, ow, out + y * ow, values + y * ow);
          }
        }
        return;
      }
    }
  }
  if (k == 2) {
    window_argmax<2>(p, w, oh, ow, k, s, out, values);
  } else {
    window_argmax<0>(p, w, oh, ow, k, s, out, values);
  }
}

void pool_f32_u8(const float* p, Index w, Index oh, Index ow, Index k, Index s, std::uint8_t* out,
                 float* values) {
  pool_impl(p, w, oh, ow, k, s, out, values);
}
void pool_f64_u8(const double* p, Index w, Index oh, Index ow, Index k, Index s, std::uint8_t* out,
                 double* values) {
  pool_impl(p, w, oh, ow, k, s, out, values);
}
void pool_f32_ix(const float* p, Index w, Index oh, Index ow, Index k, Index s, Index* out,
                 float* values) {
  pool_impl(p, w, oh, ow, k, s, out, values);
}
void pool_f64_ix(const double* p, Index w, Index oh, Index ow, Index k, Index s, Index* out,
                 double* values) {
  pool_impl(p, w, oh, ow, k, s, out, values);
}

/// v where `keep`, else +0, without a branch: the code a window chose is as likely to
/// be any of its four elements, and branching on it mispredicts about half the time.
template <class T>
HWY_INLINE T kept_or_zero(T v, bool keep) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  static_assert(sizeof(T) == sizeof(Bits));
  return std::bit_cast<T>(std::bit_cast<Bits>(v) & (Bits{0} - static_cast<Bits>(keep)));
}

/// Windows z .. z + Lanes(d) - 1 of one row of the 2x2 scatter: each window's gradient
/// masked by the four code comparisons, then interleaved into the even and odd columns
/// of the two input rows.
template <class D>
HWY_INLINE void scatter_2x2_group(D d, const float* g, const std::uint8_t* code, Index z, float* r0,
                                  float* r1) {
  const hn::RebindToSigned<D> di;
  const hn::Rebind<std::uint8_t, D> d8;
  const auto v = hn::LoadU(d, g + z);
  const auto c = hn::PromoteTo(di, hn::LoadU(d8, code + z));
  const auto pick = [&](std::int32_t t) {
    return hn::IfThenElseZero(hn::RebindMask(d, hn::Eq(c, hn::Set(di, t))), v);
  };
  hn::StoreInterleaved2(pick(0), pick(1), d, r0 + 2 * z);
  hn::StoreInterleaved2(pick(2), pick(3), d, r1 + 2 * z);
}

template <class D>
HWY_INLINE void scatter_2x2_row(D d, const float* g, const std::uint8_t* code, Index ow, float* r0,
                                float* r1) {
  const auto lanes = static_cast<Index>(hn::Lanes(d));
  Index z = 0;
  for (; z + lanes <= ow; z += lanes) scatter_2x2_group(d, g, code, z, r0, r1);
  if (z < ow) scatter_2x2_group(d, g, code, ow - lanes, r0, r1);
}

template <class T, class C>
void scatter_impl(const T* HWY_RESTRICT g, const C* HWY_RESTRICT code, Index h, Index w, Index oh,
                  Index ow, T* HWY_RESTRICT x) {
  for (Index i = 0; i < oh; ++i) {
    T* HWY_RESTRICT r0 = x + 2 * i * w;
    T* HWY_RESTRICT r1 = r0 + w;
    const T* gi = g + i * ow;
    const C* ci = code + i * ow;
    bool done = false;
    if constexpr (std::is_same_v<T, float> && std::is_same_v<C, std::uint8_t> &&
                  HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128) {
      const hn::CappedTag<float, 8> d8;
      const hn::CappedTag<float, 4> d4;
      if (ow >= static_cast<Index>(hn::Lanes(d8))) {
        scatter_2x2_row(d8, gi, ci, ow, r0, r1);
        done = true;
      } else if (ow >= static_cast<Index>(hn::Lanes(d4))) {
        scatter_2x2_row(d4, gi, ci, ow, r0, r1);
        done = true;
      }
    }
    if (!done) {
      for (Index j = 0; j < ow; ++j) {
        const T v = gi[j];
        const auto c = ci[j];
        r0[2 * j] = kept_or_zero(v, c == 0);
        r0[2 * j + 1] = kept_or_zero(v, c == 1);
        r1[2 * j] = kept_or_zero(v, c == 2);
        r1[2 * j + 1] = kept_or_zero(v, c == 3);
      }
    }
    std::fill(r0 + 2 * ow, r0 + w, T(0));
    std::fill(r1 + 2 * ow, r1 + w, T(0));
  }
  std::fill(x + 2 * oh * w, x + h * w, T(0));
}

void scatter_f32_u8(const float* g, const std::uint8_t* code, Index h, Index w, Index oh, Index ow,
                    float* x) {
  scatter_impl(g, code, h, w, oh, ow, x);
}
void scatter_f64_u8(const double* g, const std::uint8_t* code, Index h, Index w, Index oh, Index ow,
                    double* x) {
  scatter_impl(g, code, h, w, oh, ow, x);
}
void scatter_f32_ix(const float* g, const Index* code, Index h, Index w, Index oh, Index ow,
                    float* x) {
  scatter_impl(g, code, h, w, oh, ow, x);
}
void scatter_f64_ix(const double* g, const Index* code, Index h, Index w, Index oh, Index ow,
                    double* x) {
  scatter_impl(g, code, h, w, oh, ow, x);
}

/// Square roots a vector at a time (IEEE square roots are correctly rounded on every
/// target, as std::sqrt is), the tail one at a time.
template <class T>
void sqrt_impl(T* v, Index n) {
  const hn::ScalableTag<T> d;
  const auto lanes = static_cast<Index>(hn::Lanes(d));
  Index k = 0;
  for (; k + lanes <= n; k += lanes) hn::StoreU(hn::Sqrt(hn::LoadU(d, v + k)), d, v + k);
  for (; k < n; ++k) v[k] = std::sqrt(v[k]);
}

void sqrt_f32(float* v, Index n) {
  sqrt_impl(v, n);
}
void sqrt_f64(double* v, Index n) {
  sqrt_impl(v, n);
}

// ---- batch-norm reductions ---------------------------------------------------------
//
// Per channel, over its n rows of s values: sums in double, each row's values taken
// eight at a time into two four-lane accumulators (generic vectors: the same additions
// in the same order whatever the target's width, which only changes how many
// instructions carry them out), the lanes added in a fixed order, then the tail one by
// one, and the row's total added to the channel's. This file is compiled without
// multiply-add contraction, so every target gives the bits of the portable one.

using Lanes4 = double __attribute__((vector_size(4 * sizeof(double))));

/// p[0..4) as doubles minus m (out by reference: no vector type crosses a call, whose
/// ABI would depend on the target).
template <class T>
HWY_INLINE void load4(const T* p, double m, Lanes4& out) {
  if constexpr (std::is_same_v<T, float>) {
    using F4 = float __attribute__((vector_size(4 * sizeof(float))));
    F4 v;
    std::memcpy(&v, p, sizeof v);
    out = __builtin_convertvector(v, Lanes4) - m;
  } else {
    std::memcpy(&out, p, sizeof out);
    out -= m;
  }
}

HWY_INLINE double lane_sum(const Lanes4& v) {
  return (v[0] + v[2]) + (v[1] + v[3]);
}

template <class T>
double square_sums_impl(const T* x, Index n, Index stride, Index s, T mu) {
  const double m = static_cast<double>(mu);
  double sq = 0.0;
  for (Index b = 0; b < n; ++b) {
    const T* row = x + b * stride;
    Lanes4 a0{}, a1{}, x0, x1;
    Index i = 0;
    for (; i + 8 <= s; i += 8) {
      load4(row + i, m, x0);
      load4(row + i + 4, m, x1);
      a0 += x0 * x0;
      a1 += x1 * x1;
    }
    double total = lane_sum(a0 + a1);
    for (; i < s; ++i) {
      const double d = static_cast<double>(row[i]) - m;
      total += d * d;
    }
    sq += total;
  }
  return sq;
}

template <class T>
void backward_sums_impl(const T* x, const T* g, Index n, Index stride, Index s, T mu,
                        double* sums) {
  const double m = static_cast<double>(mu);
  double sg = 0.0, sgx = 0.0;
  for (Index b = 0; b < n; ++b) {
    const T* xr = x + b * stride;
    const T* gr = g + b * stride;
    Lanes4 g0{}, g1{}, gx0{}, gx1{}, gv0, gv1, xv0, xv1;
    Index i = 0;
    for (; i + 8 <= s; i += 8) {
      load4(gr + i, 0.0, gv0);
      load4(gr + i + 4, 0.0, gv1);
      load4(xr + i, m, xv0);
      load4(xr + i + 4, m, xv1);
      g0 += gv0;
      g1 += gv1;
      gx0 += gv0 * xv0;
      gx1 += gv1 * xv1;
    }
    double tg = lane_sum(g0 + g1), tgx = lane_sum(gx0 + gx1);
    for (; i < s; ++i) {
      const double gi = static_cast<double>(gr[i]);
      tg += gi;
      tgx += gi * (static_cast<double>(xr[i]) - m);
    }
    sg += tg;
    sgx += tgx;
  }
  sums[0] = sg;
  sums[1] = sgx;
}

template <class T>
void second_order_sums_impl(const T* x, const T* g, const T* a, Index n, Index stride, Index s,
                            T mu, double* sums) {
  const double m = static_cast<double>(mu);
  double out[5] = {};
  for (Index b = 0; b < n; ++b) {
    const T* xr = x + b * stride;
    const T* gr = g + b * stride;
    const T* ar = a + b * stride;
    Lanes4 sg{}, sgx{}, sa{}, sax{}, sag{}, xv, gv, av;
    Index i = 0;
    for (; i + 4 <= s; i += 4) {
      load4(xr + i, m, xv);
      load4(gr + i, 0.0, gv);
      load4(ar + i, 0.0, av);
      sg += gv;
      sgx += gv * xv;
      sa += av;
      sax += av * xv;
      sag += av * gv;
    }
    double t[5] = {lane_sum(sg), lane_sum(sgx), lane_sum(sa), lane_sum(sax), lane_sum(sag)};
    for (; i < s; ++i) {
      const double xi = static_cast<double>(xr[i]) - m;
      const double gi = static_cast<double>(gr[i]), ai = static_cast<double>(ar[i]);
      t[0] += gi;
      t[1] += gi * xi;
      t[2] += ai;
      t[3] += ai * xi;
      t[4] += ai * gi;
    }
    for (int k = 0; k < 5; ++k) out[k] += t[k];
  }
  for (int k = 0; k < 5; ++k) sums[k] = out[k];
}

double square_sums_f32(const float* x, Index n, Index stride, Index s, float mu) {
  return square_sums_impl(x, n, stride, s, mu);
}
double square_sums_f64(const double* x, Index n, Index stride, Index s, double mu) {
  return square_sums_impl(x, n, stride, s, mu);
}
void backward_sums_f32(const float* x, const float* g, Index n, Index stride, Index s, float mu,
                       double* sums) {
  backward_sums_impl(x, g, n, stride, s, mu, sums);
}
void backward_sums_f64(const double* x, const double* g, Index n, Index stride, Index s, double mu,
                       double* sums) {
  backward_sums_impl(x, g, n, stride, s, mu, sums);
}
void second_order_sums_f32(const float* x, const float* g, const float* a, Index n, Index stride,
                           Index s, float mu, double* sums) {
  second_order_sums_impl(x, g, a, n, stride, s, mu, sums);
}
void second_order_sums_f64(const double* x, const double* g, const double* a, Index n, Index stride,
                           Index s, double mu, double* sums) {
  second_order_sums_impl(x, g, a, n, stride, s, mu, sums);
}

// ---- logistic sigmoid, tanh and the GRU gates ---------------------------------------
//
// float: exp and expm1 by Cody-Waite reduction to |r| <= ln2/2 (k = round(x log2 e),
// r = x - k ln2 in two parts, k ln2_hi exact) and Taylor polynomials by Horner's rule,
// 2^k built from exponent bits. Only IEEE basic operations are used (no multiply-add
// is fused: the file is compiled with -ffp-contract=off), and row tails run the same
// code on one-lane vectors, so every target and every lane gives the same bits.
// double keeps libm (std::exp, std::tanh) through the scalar forms of simd_kernels.hpp.

constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693145751953125f;  // 15 significant bits: k ln2_hi is exact
constexpr float kLn2Lo = 1.42860676533018704e-6f;

/// 2^k for integral k in [-126, 127].
template <class D>
HWY_INLINE hn::Vec<D> Pow2(D d, hn::Vec<D> k) {
  const hn::RebindToSigned<D> di;
  return hn::BitCast(d, hn::ShiftLeft<23>(hn::Add(hn::ConvertTo(di, k), hn::Set(di, 127))));
}

/// r = x - k ln2 with k = round(x log2 e), returned with k.
template <class D>
HWY_INLINE hn::Vec<D> ReduceLn2(D d, hn::Vec<D> x, hn::Vec<D>& k) {
  k = hn::Round(hn::Mul(x, hn::Set(d, kLog2e)));
  return hn::Sub(hn::Sub(x, hn::Mul(k, hn::Set(d, kLn2Hi))), hn::Mul(k, hn::Set(d, kLn2Lo)));
}

/// exp(x) for x <= 0; below -104 (where exp rounds to zero) x is clamped there. 2^k
/// is applied in two halves, so results in the subnormal range round once.
template <class D>
HWY_INLINE hn::Vec<D> ExpNonPositive(D d, hn::Vec<D> x) {
  hn::Vec<D> k;
  const auto r = ReduceLn2(d, hn::Max(x, hn::Set(d, -104.0f)), k);
  auto p = hn::Set(d, 1.0f / 5040.0f);
  p = hn::Add(hn::Mul(p, r), hn::Set(d, 1.0f / 720.0f));
  p = hn::Add(hn::Mul(p, r), hn::Set(d, 1.0f / 120.0f));
  p = hn::Add(hn::Mul(p, r), hn::Set(d, 1.0f / 24.0f));
  p = hn::Add(hn::Mul(p, r), hn::Set(d, 1.0f / 6.0f));
  p = hn::Add(hn::Mul(p, r), hn::Set(d, 0.5f));
  p = hn::Add(hn::Mul(p, r), hn::Set(d, 1.0f));
  p = hn::Add(hn::Mul(p, r), hn::Set(d, 1.0f));
  const auto k1 = hn::Trunc(hn::Mul(k, hn::Set(d, 0.5f)));
  return hn::Mul(hn::Mul(p, Pow2(d, k1)), Pow2(d, hn::Sub(k, k1)));
}

/// 1 / (1 + exp(-x)) for x >= 0, exp(x) / (1 + exp(x)) below (no overflow); NaN stays.
template <class D>
HWY_INLINE hn::Vec<D> Sigmoid(D d, hn::Vec<D> x) {
  const auto one = hn::Set(d, 1.0f);
  const auto e = ExpNonPositive(d, hn::Neg(hn::Abs(x)));
  const auto y = hn::Div(hn::IfThenElse(hn::Lt(x, hn::Zero(d)), e, one), hn::Add(one, e));
  return hn::IfThenElse(hn::IsNaN(x), x, y);
}

/// tanh(x) = sign(x) m / (m + 2) with m = expm1(2|x|) (no cancellation near zero);
/// 2|x| is clamped at 40, where tanh is 1 in float. NaN stays.
template <class D>
HWY_INLINE hn::Vec<D> Tanh(D d, hn::Vec<D> x) {
  const auto ax = hn::Abs(x);
  hn::Vec<D> k;
  const auto r = ReduceLn2(d, hn::Min(hn::Add(ax, ax), hn::Set(d, 40.0f)), k);
  auto q = hn::Set(d, 1.0f / 40320.0f);
  q = hn::Add(hn::Mul(q, r), hn::Set(d, 1.0f / 5040.0f));
  q = hn::Add(hn::Mul(q, r), hn::Set(d, 1.0f / 720.0f));
  q = hn::Add(hn::Mul(q, r), hn::Set(d, 1.0f / 120.0f));
  q = hn::Add(hn::Mul(q, r), hn::Set(d, 1.0f / 24.0f));
  q = hn::Add(hn::Mul(q, r), hn::Set(d, 1.0f / 6.0f));
  q = hn::Add(hn::Mul(q, r), hn::Set(d, 0.5f));
  const auto em1_r = hn::Add(r, hn::Mul(hn::Mul(r, r), q));  // expm1(r)
  const auto two_k = Pow2(d, k);
  const auto one = hn::Set(d, 1.0f);
  const auto m = hn::Add(hn::Mul(two_k, em1_r), hn::Sub(two_k, one));  // expm1(2|x|)
  const auto t = hn::Div(m, hn::Add(m, hn::Set(d, 2.0f)));
  return hn::IfThenElse(hn::IsNaN(x), x, hn::CopySignToAbs(t, x));
}

/// y[0, n) = f(x[0, n)) a vector at a time, the tail on one-lane vectors.
template <class F>
HWY_INLINE void map_lanes(const float* x, float* y, Index n, F f) {
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  const auto lanes = static_cast<Index>(hn::Lanes(d));
  Index i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(f(d, hn::LoadU(d, x + i)), d, y + i);
  for (; i < n; ++i) hn::StoreU(f(d1, hn::LoadU(d1, x + i)), d1, y + i);
}

void sigmoid_f32(const float* x, float* y, Index n) {
  map_lanes(x, y, n, [](auto d, auto v) { return Sigmoid(d, v); });
}
void tanh_f32(const float* x, float* y, Index n) {
  map_lanes(x, y, n, [](auto d, auto v) { return Tanh(d, v); });
}

/// The GRU gates of columns [k, k + Lanes(d)) of one row (see gru_gates_forward).
template <class D>
HWY_INLINE void gru_lanes(D d, const float* gi, const float* gh, const float* h, Index hs, Index k,
                          float* out, float* saved) {
  const auto r = Sigmoid(d, hn::Add(hn::LoadU(d, gi + k), hn::LoadU(d, gh + k)));
  const auto z = Sigmoid(d, hn::Add(hn::LoadU(d, gi + hs + k), hn::LoadU(d, gh + hs + k)));
  const auto ghn = hn::LoadU(d, gh + 2 * hs + k);
  const auto n = Tanh(d, hn::Add(hn::LoadU(d, gi + 2 * hs + k), hn::Mul(r, ghn)));
  hn::StoreU(hn::Add(n, hn::Mul(z, hn::Sub(hn::LoadU(d, h + k), n))), d, out + k);
  if (saved != nullptr) {
    hn::StoreU(r, d, saved + k);
    hn::StoreU(z, d, saved + hs + k);
    hn::StoreU(n, d, saved + 2 * hs + k);
    hn::StoreU(ghn, d, saved + 3 * hs + k);
  }
}

void gru_forward_f32(const float* gi, const float* gh, const float* h, Index rows, Index hs,
                     float* out, float* saved) {
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  const auto lanes = static_cast<Index>(hn::Lanes(d));
  for (Index j = 0; j < rows; ++j) {
    const float* gij = gi + j * 3 * hs;
    const float* ghj = gh + j * 3 * hs;
    const float* hj = h + j * hs;
    float* oj = out + j * hs;
    float* sj = saved != nullptr ? saved + j * 4 * hs : nullptr;
    Index k = 0;
    for (; k + lanes <= hs; k += lanes) gru_lanes(d, gij, ghj, hj, hs, k, oj, sj);
    for (; k < hs; ++k) gru_lanes(d1, gij, ghj, hj, hs, k, oj, sj);
  }
}

void gru_forward_f64(const double* gi, const double* gh, const double* h, Index rows, Index hs,
                     double* out, double* saved) {
  for (Index j = 0; j < rows; ++j) {
    const double* gij = gi + j * 3 * hs;
    const double* ghj = gh + j * 3 * hs;
    for (Index k = 0; k < hs; ++k) {
      const double r = logistic(gij[k] + ghj[k]);
      const double z = logistic(gij[hs + k] + ghj[hs + k]);
      const double ghn = ghj[2 * hs + k];
      const double n = std::tanh(gij[2 * hs + k] + r * ghn);
      out[j * hs + k] = n + z * (h[j * hs + k] - n);
      if (saved != nullptr) {
        double* sj = saved + j * 4 * hs;
        sj[k] = r;
        sj[hs + k] = z;
        sj[2 * hs + k] = n;
        sj[3 * hs + k] = ghn;
      }
    }
  }
}

/// The GRU gates' backward (see gru_gates_backward): plain loops, vectorised for each
/// target by the compiler; one rounding per operation, none fused.
template <class T>
void gru_backward_impl(const T* a, const T* h, const T* saved, Index rows, Index hs, T* dgi, T* dgh,
                       T* dh) {
  for (Index j = 0; j < rows; ++j) {
    const T* HWY_RESTRICT aj = a + j * hs;
    const T* HWY_RESTRICT hj = h + j * hs;
    const T* HWY_RESTRICT sj = saved + j * 4 * hs;
    for (Index k = 0; k < hs; ++k) {
      const T r = sj[k];
      const T z = sj[hs + k];
      const T n = sj[2 * hs + k];
      const T ghn = sj[3 * hs + k];
      const T av = aj[k];
      const T dpz = (av * (hj[k] - n)) * (z - z * z);
      const T dpn = (av - av * z) * (T(1) - n * n);
      const T dpr = (dpn * ghn) * (r - r * r);
      if (dh != nullptr) dh[j * hs + k] = av * z;
      if (dgi != nullptr) {
        dgi[j * 3 * hs + k] = dpr;
        dgi[j * 3 * hs + hs + k] = dpz;
        dgi[j * 3 * hs + 2 * hs + k] = dpn;
      }
      if (dgh != nullptr) {
        dgh[j * 3 * hs + k] = dpr;
        dgh[j * 3 * hs + hs + k] = dpz;
        dgh[j * 3 * hs + 2 * hs + k] = dpn * r;
      }
    }
  }
}

void gru_backward_f32(const float* a, const float* h, const float* saved, Index rows, Index hs,
                      float* dgi, float* dgh, float* dh) {
  gru_backward_impl(a, h, saved, rows, hs, dgi, dgh, dh);
}
void gru_backward_f64(const double* a, const double* h, const double* saved, Index rows, Index hs,
                      double* dgi, double* dgh, double* dh) {
  gru_backward_impl(a, h, saved, rows, hs, dgi, dgh, dh);
}

}  // namespace metalearn::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace metalearn::detail {

HWY_EXPORT(im2col_f32);
HWY_EXPORT(im2col_f64);
HWY_EXPORT(col2im_f32);
HWY_EXPORT(col2im_f64);
HWY_EXPORT(gather_f32);
HWY_EXPORT(gather_f64);
HWY_EXPORT(pool_f32_u8);
HWY_EXPORT(pool_f64_u8);
HWY_EXPORT(pool_f32_ix);
HWY_EXPORT(pool_f64_ix);
HWY_EXPORT(scatter_f32_u8);
HWY_EXPORT(scatter_f64_u8);
HWY_EXPORT(scatter_f32_ix);
HWY_EXPORT(scatter_f64_ix);
HWY_EXPORT(sqrt_f32);
HWY_EXPORT(sqrt_f64);
HWY_EXPORT(square_sums_f32);
HWY_EXPORT(square_sums_f64);
HWY_EXPORT(backward_sums_f32);
HWY_EXPORT(backward_sums_f64);
HWY_EXPORT(second_order_sums_f32);
HWY_EXPORT(second_order_sums_f64);
HWY_EXPORT(sigmoid_f32);
HWY_EXPORT(tanh_f32);
HWY_EXPORT(gru_forward_f32);
HWY_EXPORT(gru_forward_f64);
HWY_EXPORT(gru_backward_f32);
HWY_EXPORT(gru_backward_f64);

// Each entry point settles the target once (simd_ready reads METALEARN_SIMD on first
// use), then calls the chosen target's code through Highway's table.
#define METALEARN_DISPATCH(name) (static_cast<void>(simd_ready()), HWY_DYNAMIC_DISPATCH(name))

void im2col(const float* x, const Conv2dGeometry& g, Index nb, float* cols) {
  METALEARN_DISPATCH(im2col_f32)(x, g, nb, cols);
}
void im2col(const double* x, const Conv2dGeometry& g, Index nb, double* cols) {
  METALEARN_DISPATCH(im2col_f64)(x, g, nb, cols);
}
void col2im_add(const float* cols, const Conv2dGeometry& g, Index nb, float* x) {
  METALEARN_DISPATCH(col2im_f32)(cols, g, nb, x);
}
void col2im_add(const double* cols, const Conv2dGeometry& g, Index nb, double* x) {
  METALEARN_DISPATCH(col2im_f64)(cols, g, nb, x);
}
void gather_channels(const float* y, Index o, Index l, Index nb, float* m) {
  METALEARN_DISPATCH(gather_f32)(y, o, l, nb, m);
}
void gather_channels(const double* y, Index o, Index l, Index nb, double* m) {
  METALEARN_DISPATCH(gather_f64)(y, o, l, nb, m);
}
void pool_plane(const float* p, Index w, Index oh, Index ow, Index k, Index s, std::uint8_t* code,
                float* values) {
  METALEARN_DISPATCH(pool_f32_u8)(p, w, oh, ow, k, s, code, values);
}
void pool_plane(const double* p, Index w, Index oh, Index ow, Index k, Index s, std::uint8_t* code,
                double* values) {
  METALEARN_DISPATCH(pool_f64_u8)(p, w, oh, ow, k, s, code, values);
}
void pool_plane(const float* p, Index w, Index oh, Index ow, Index k, Index s, Index* code,
                float* values) {
  METALEARN_DISPATCH(pool_f32_ix)(p, w, oh, ow, k, s, code, values);
}
void pool_plane(const double* p, Index w, Index oh, Index ow, Index k, Index s, Index* code,
                double* values) {
  METALEARN_DISPATCH(pool_f64_ix)(p, w, oh, ow, k, s, code, values);
}
void scatter_2x2_plane(const float* g, const std::uint8_t* code, Index h, Index w, Index oh,
                       Index ow, float* x) {
  METALEARN_DISPATCH(scatter_f32_u8)(g, code, h, w, oh, ow, x);
}
void scatter_2x2_plane(const double* g, const std::uint8_t* code, Index h, Index w, Index oh,
                       Index ow, double* x) {
  METALEARN_DISPATCH(scatter_f64_u8)(g, code, h, w, oh, ow, x);
}
void scatter_2x2_plane(const float* g, const Index* code, Index h, Index w, Index oh, Index ow,
                       float* x) {
  METALEARN_DISPATCH(scatter_f32_ix)(g, code, h, w, oh, ow, x);
}
void scatter_2x2_plane(const double* g, const Index* code, Index h, Index w, Index oh, Index ow,
                       double* x) {
  METALEARN_DISPATCH(scatter_f64_ix)(g, code, h, w, oh, ow, x);
}
void sqrt_in_place(float* v, Index n) {
  METALEARN_DISPATCH(sqrt_f32)(v, n);
}
void sqrt_in_place(double* v, Index n) {
  METALEARN_DISPATCH(sqrt_f64)(v, n);
}
double bn_square_sum(const float* x, Index n, Index stride, Index s, float mu) {
  return METALEARN_DISPATCH(square_sums_f32)(x, n, stride, s, mu);
}
double bn_square_sum(const double* x, Index n, Index stride, Index s, double mu) {
  return METALEARN_DISPATCH(square_sums_f64)(x, n, stride, s, mu);
}
void bn_backward_sums(const float* x, const float* g, Index n, Index stride, Index s, float mu,
                      double* sums) {
  METALEARN_DISPATCH(backward_sums_f32)(x, g, n, stride, s, mu, sums);
}
void bn_backward_sums(const double* x, const double* g, Index n, Index stride, Index s, double mu,
                      double* sums) {
  METALEARN_DISPATCH(backward_sums_f64)(x, g, n, stride, s, mu, sums);
}
void bn_second_order_sums(const float* x, const float* g, const float* a, Index n, Index stride,
                          Index s, float mu, double* sums) {
  METALEARN_DISPATCH(second_order_sums_f32)(x, g, a, n, stride, s, mu, sums);
}
void bn_second_order_sums(const double* x, const double* g, const double* a, Index n, Index stride,
                          Index s, double mu, double* sums) {
  METALEARN_DISPATCH(second_order_sums_f64)(x, g, a, n, stride, s, mu, sums);
}

void sigmoid_values(const float* x, float* y, Index n) {
  METALEARN_DISPATCH(sigmoid_f32)(x, y, n);
}
void tanh_values(const float* x, float* y, Index n) {
  METALEARN_DISPATCH(tanh_f32)(x, y, n);
}
void gru_gates_forward(const float* gi, const float* gh, const float* h, Index rows, Index hs,
                       float* out, float* saved) {
  METALEARN_DISPATCH(gru_forward_f32)(gi, gh, h, rows, hs, out, saved);
}
void gru_gates_forward(const double* gi, const double* gh, const double* h, Index rows, Index hs,
                       double* out, double* saved) {
  METALEARN_DISPATCH(gru_forward_f64)(gi, gh, h, rows, hs, out, saved);
}
void gru_gates_backward(const float* a, const float* h, const float* saved, Index rows, Index hs,
                        float* dgi, float* dgh, float* dh) {
  METALEARN_DISPATCH(gru_backward_f32)(a, h, saved, rows, hs, dgi, dgh, dh);
}
void gru_gates_backward(const double* a, const double* h, const double* saved, Index rows, Index hs,
                        double* dgi, double* dgh, double* dh) {
  METALEARN_DISPATCH(gru_backward_f64)(a, h, saved, rows, hs, dgi, dgh, dh);
}

#undef METALEARN_DISPATCH

}  // namespace metalearn::detail
#endif  // HWY_ONCE
