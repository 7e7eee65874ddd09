#pragma once
// Differentiable 2-D convolution (chunked im2col + GEMM) and max pooling, NCHW layout.

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "metalearn/core/thread_pool.hpp"
#include "metalearn/tensor/gemm.hpp"
#include "metalearn/tensor/ops/elementwise.hpp"
#include "metalearn/tensor/ops/linalg.hpp"
#include "metalearn/tensor/ops/shape_ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn {

/// Geometry of a 2-D sliding window over a [C, H, W] image.
struct Conv2dGeometry {
  Index channels = 0, height = 0, width = 0;
  Index kernel_h = 0, kernel_w = 0;
  Index stride = 1, padding = 0;

  [[nodiscard]] Index out_h() const { return (height + 2 * padding - kernel_h) / stride + 1; }
  [[nodiscard]] Index out_w() const { return (width + 2 * padding - kernel_w) / stride + 1; }
  [[nodiscard]] Index patch() const { return channels * kernel_h * kernel_w; }
  [[nodiscard]] Index image() const { return channels * height * width; }
};

namespace detail {

/// How many chunks of images a convolution over n images is cut into. One chunk's
/// im2col workspace ([C*kh*kw, images*L]) stays near 2 MiB: the workspace stays in
/// cache, and no buffer grows with the batch (a 600-image episode would otherwise need
/// hundreds of MB of columns). A chunk also holds at most max(16, a quarter of the
/// batch) images, so that an intra-op pool has work for each thread (an 80-image
/// episode's first and last layers would otherwise be one or two chunks). A batch
/// large enough is cut into a multiple of four chunks, so that two or four threads get
/// equal shares (80 images in chunks of at most 18 run as 8 chunks of 10, not 5 of
/// 16), and ConvChunks sizes the chunks within one image of each other (5 images in
/// two chunks are cut 2 + 3, not 4 + 1), so that no chunk is left with a GEMM too
/// narrow to run well. The cut depends on the geometry and the batch size only.
template <class T>
Index conv_chunk_count(const Conv2dGeometry& g, Index n) {
  constexpr Index kBudget = Index{2} << 20;
  constexpr Index kMinChunks = 4;
  constexpr Index kMinImages = 16;
  constexpr Index kMinImagesWhenRounded = 4;
  const Index per_image =
      std::max<Index>(1, g.patch() * g.out_h() * g.out_w() * static_cast<Index>(sizeof(T)));
  const Index balanced = std::max(kMinImages, (n + kMinChunks - 1) / kMinChunks);
  const Index images = std::max<Index>(n, 1);
  const Index most = std::clamp<Index>(std::min(kBudget / per_image, balanced), 1, images);
  const Index count = (images + most - 1) / most;
  const Index rounded = (count + kMinChunks - 1) / kMinChunks * kMinChunks;
  return count > 1 && images >= rounded * kMinImagesWhenRounded ? rounded : count;
}

/// A workspace tensor of `shape` (im2col columns, products, bordered copies) whose
/// storage is rounded up to a power of two bytes: the workspaces of every layer and
/// chunk then share a few block sizes in the thread's block cache, instead of each
/// distinct size leaving an idle block behind (30 MB of them in a five-step MAML).
template <class T>
Tensor<T> workspace(const Shape& shape) {
  const auto bytes = static_cast<std::size_t>(std::max<Index>(shape.numel(), 1)) * sizeof(T);
  const auto capacity = static_cast<Index>(std::bit_ceil(bytes) / sizeof(T));
  return Tensor<T>::from_storage(allocate<T>(capacity), shape);
}

/// Rows at least this long are copied or filled with a library call.
inline constexpr Index kWideRow = 32;

/// d[0, n) = s[0, n) for the short rows of small images, without a library call
/// per row (memcpy's call costs more than copying a 3- to 14-float row). A row is
/// covered by fixed-size moves whose last one ends at n, overlapping the one before
/// it where n is not a multiple of its size (s and d do not overlap): an 11-float row
/// is two moves of 8, not 8 + 2 + 1. Eight floats move as one 32-byte load and store
/// where the target has AVX (the compiler's inline memcpy moves 16 bytes at a time).
template <class T>
[[gnu::always_inline]] inline void copy_row(const T* s, Index n, T* d) {
  constexpr auto kMove = [](const T* from, T* to, Index count) {
#if defined(__AVX__)
    if constexpr (std::is_same_v<T, float>) {
      if (count == 8) {
        _mm256_storeu_ps(to, _mm256_loadu_ps(from));
        return;
      }
    }
#endif
    std::memcpy(to, from, static_cast<std::size_t>(count) * sizeof(T));
  };
  if (n >= kWideRow) {
    std::copy_n(s, n, d);
  } else if (n >= 8) {
    for (Index x = 0; x + 8 < n; x += 8) kMove(s + x, d + x, 8);
    kMove(s + n - 8, d + n - 8, 8);
  } else if (n >= 4) {
    kMove(s, d, 4);
    kMove(s + n - 4, d + n - 4, 4);
  } else if (n >= 2) {
    kMove(s, d, 2);
    kMove(s + n - 2, d + n - 2, 2);
  } else if (n == 1) {
    d[0] = s[0];
  }
}

/// d[0, n) = 0, short lengths without a library call (copy_row from zeros).
template <class T>
[[gnu::always_inline]] inline void zero_row(Index n, T* d) {
  static constexpr T kZeros[kWideRow] = {};
  if (n >= kWideRow) {
    std::fill_n(d, n, T(0));
  } else {
    copy_row(kZeros, n, d);
  }
}

/// Copies the `nb` images at x into `padded` [nb, C, H+2p, W+2p] with a zero border.
template <class T>
void pad_images(const T* x, const Conv2dGeometry& g, Index nb, T* padded) {
  const Index pitch = g.width + 2 * g.padding;
  const Index plane = (g.height + 2 * g.padding) * pitch;
  // One fill for all borders, then the rows: a fill per border row would be a
  // library call per one or two elements.
  std::fill_n(padded, nb * g.channels * plane, T(0));
  for (Index p = 0; p < nb * g.channels; ++p) {
    T* d = padded + p * plane + g.padding * pitch + g.padding;
    const T* src = x + p * g.height * g.width;
    for (Index y = 0; y < g.height; ++y) copy_row(src + y * g.width, g.width, d + y * pitch);
  }
}

/// The `nb` images of a convolution as its windows read them: [nb, C, H+2p, W+2p],
/// the images themselves when unpadded, else a copy with a zero border, so that
/// every window lies inside and im2col and col2im need no edge cases.
template <class T>
struct BorderedImages {
  Index pitch = 0, plane = 0;
  Tensor<T> padded;  // defined when the geometry pads

  BorderedImages(const T* x, const Conv2dGeometry& g, Index nb)
      : pitch(g.width + 2 * g.padding), plane((g.height + 2 * g.padding) * pitch) {
    if (g.padding > 0) {
      padded = workspace<T>(Shape{nb * g.channels * plane});
      pad_images(x, g, nb, padded.data());
    }
  }
  /// Element (b, c, 0, 0) of the bordered images, given the images themselves.
  template <class P>
  P* at(P* images, const Conv2dGeometry& g, Index b, Index c) const {
    P* base = padded.defined() ? padded.data() : images;
    return base + (b * g.channels + c) * plane;
  }
};

/// Whether a convolution keeps the image size at stride 1 (a (2p+1) x (2p+1) kernel
/// at padding p), so that each im2col row is a shifted copy of the image plane.
inline bool keeps_size(const Conv2dGeometry& g) {
  return g.stride == 1 && g.kernel_h == 2 * g.padding + 1 && g.kernel_w == 2 * g.padding + 1;
}

/// im2col for keeps_size() geometries, from the images themselves (no bordered
/// copy). Row (c, i, j) of image b is channel c's plane shifted by di = i - p rows
/// and dj = j - p columns: output (y, q) reads input (y + di, q + dj), which in the
/// flat plane is one offset, di * W + dj. So the rows whose source row is inside are
/// one contiguous copy, and only the rows shifted off the plane and the |dj| columns
/// per row that the offset wraps into the neighbouring row are zeroed: a few long
/// copies instead of one short copy per output row.
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
          // Column by column down the rows: a library call per one or two elements
          // would cost more than the copy.
          for (Index q = q0; q < q1; ++q) {
            for (Index y = y0; y < y1; ++y) d[y * w + q] = T(0);
          }
        }
      }
    }
  }
}

/// im2col of `nb` images starting at x: cols [C*kh*kw, nb*L], column b*L + q. Row
/// (c, i, j) holds, for every output position, the input at kernel offset (i, j) of
/// channel c: output row y of image b is input row y*stride + i of the bordered
/// images, read from column j on at the stride. Any geometry; im2col() below takes
/// the shortcut where there is one.
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

/// im2col of `nb` images starting at x: cols [C*kh*kw, nb*L] (see im2col_bordered).
template <class T>
void im2col(const T* x, const Conv2dGeometry& g, Index nb, T* cols) {
  if (keeps_size(g)) {
    im2col_same_size(x, g, nb, cols);
  } else {
    im2col_bordered(x, g, nb, cols);
  }
}

/// d[0, n) += s[0, n) for the rows of col2im, n fixed per call, d inside a plane
/// that ends at `end` and that no other thread writes meanwhile. Float rows on AVX2
/// targets add eight at a time: the compiler's loop takes the last n % 8 one by one,
/// and in ConvNet4's unpadded layers (rows of 26, 11 and 3) they are a third of the
/// elements or more. The last group adds -0 in the lanes past the row, which leaves
/// every value as it was (x + -0 is x, signed zeros and NaNs included), so it is a
/// plain load and store while the plane has room for eight lanes; at the plane's end
/// it is a masked store (on the AMD EPYC cores measured, a masked store costs many
/// plain ones). The same one rounding per element either way.
template <class T>
class RowAdder {
 public:
  explicit RowAdder(Index n) : n_(n) {
#if defined(__AVX2__)
    if constexpr (std::is_same_v<T, float>) {
      alignas(32) std::int32_t lanes[8];
      alignas(32) std::uint32_t past[8];
      for (Index t = 0; t < 8; ++t) {
        lanes[t] = t < n % 8 ? -1 : 0;
        past[t] = t < n % 8 ? 0U : 0x80000000U;
      }
      tail_ = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
      minus_zero_past_ = _mm256_load_ps(reinterpret_cast<const float*>(past));
    }
#endif
  }

  void operator()(const T* __restrict s, T* __restrict d, const T* end) const {
#if defined(__AVX2__)
    if constexpr (std::is_same_v<T, float>) {
      Index x = 0;
      for (; x + 8 <= n_; x += 8) {
        _mm256_storeu_ps(d + x, _mm256_add_ps(_mm256_loadu_ps(d + x), _mm256_loadu_ps(s + x)));
      }
      if (x < n_) {
        const __m256 terms = _mm256_maskload_ps(s + x, tail_);
        if (end - (d + x) >= 8) {
          const __m256 sum =
              _mm256_add_ps(_mm256_loadu_ps(d + x), _mm256_or_ps(terms, minus_zero_past_));
          _mm256_storeu_ps(d + x, sum);
        } else {
          _mm256_maskstore_ps(d + x, tail_, _mm256_add_ps(_mm256_maskload_ps(d + x, tail_), terms));
        }
      }
      return;
    }
#endif
    static_cast<void>(end);
    for (Index x = 0; x < n_; ++x) d[x] += s[x];
  }

 private:
  Index n_;
#if defined(__AVX2__)
  __m256i tail_{};
  __m256 minus_zero_past_{};
#endif
};

/// col2im, the adjoint of im2col: adds cols [C*kh*kw, nb*L] into `nb` images at x.
/// Every pixel receives its terms in the order of the im2col rows (one term per
/// row at most); terms that fall on the zero border are dropped.
template <class T>
void col2im_add(const T* cols, const Conv2dGeometry& g, Index nb, T* x) {
  const Index oh = g.out_h(), ow = g.out_w(), l = oh * ow, ncols = nb * l, st = g.stride;
  BorderedImages<T> dst(x, g, nb);
  const RowAdder<T> add_row(ow);
  for (Index c = 0; c < g.channels; ++c) {
    for (Index i = 0; i < g.kernel_h; ++i) {
      for (Index j = 0; j < g.kernel_w; ++j) {
        const T* row = cols + ((c * g.kernel_h + i) * g.kernel_w + j) * ncols;
        for (Index b = 0; b < nb; ++b) {
          T* plane = dst.at(x, g, b, c);
          T* d = plane + i * dst.pitch + j;
          const T* s = row + b * l;
          if (st == 1) {
            // Even rows, then odd ones: the -0 lanes past a row reach into the next
            // row, and a load that overlaps part of a store still in flight waits
            // for it to complete (each row's first load would, in row order).
            for (Index parity = 0; parity < 2; ++parity) {
              for (Index y = parity; y < oh; y += 2) {
                add_row(s + y * ow, d + y * dst.pitch, plane + dst.plane);
              }
            }
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

/// Copies images [b0, b0+nb) of y [N, O, L] into m [O, nb*L] (column b*L + q).
template <class T>
void gather_channels(const T* y, Index o, Index l, Index nb, T* m) {
  for (Index b = 0; b < nb; ++b) {
    for (Index c = 0; c < o; ++c) copy_row(y + (b * o + c) * l, l, m + c * nb * l + b * l);
  }
}

/// nb images of y [N, O, L] (from `y` on) as one [O, nb*L] matrix: y itself for one
/// image, else a copy gathered into `storage`.
template <class T>
const T* channel_major(const T* y, Index o, Index l, Index nb, Tensor<T>& storage) {
  if (nb == 1) return y;
  storage = workspace<T>(Shape{o, nb * l});
  gather_channels(y, o, l, nb, storage.data());
  return storage.data();
}

/// The chunks of images [b0, b0 + nb) that the convolution loops below process
/// independently (on the intra-op pool when the thread has one, see IntraOpScope).
/// How the batch is cut depends on the geometry only, never on the thread count.
struct ConvChunks {
  Index images = 0, count = 0;
  template <class T>
  static ConvChunks of(const Conv2dGeometry& g, Index n) {
    return ConvChunks{n, n > 0 ? conv_chunk_count<T>(g, n) : 0};
  }
  [[nodiscard]] Index first(std::size_t c) const { return images * static_cast<Index>(c) / count; }
  [[nodiscard]] Index size(std::size_t c) const { return first(c + 1) - first(c); }
};

/// Patches (C * kh * kw) up to this long have their forward products computed image by
/// image (see conv2d_values).
inline constexpr Index kShortPatch = 64;

/// y [N, O, oh, ow] = conv(x, w) (+ bias), computed chunk by chunk of images.
template <class T>
Tensor<T> conv2d_values(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& bias,
                        const Conv2dGeometry& g) {
  const Index n = x.shape()[0], o = w.shape()[0], k = g.patch();
  const Index l = g.out_h() * g.out_w();
  Tensor<T> y = Tensor<T>::empty(Shape{n, o, g.out_h(), g.out_w()});
  const ConvChunks chunks = ConvChunks::of<T>(g, n);
  const T* b = bias.defined() ? bias.data() : nullptr;
  parallel_for(static_cast<std::size_t>(chunks.count), [&](std::size_t c) {
    const Index b0 = chunks.first(c), nb = chunks.size(c);
    Tensor<T> cols = workspace<T>(Shape{k, nb * l});
    im2col(x.data() + b0 * g.image(), g, nb, cols.data());
    if (nb == 1 || k <= kShortPatch) {
      // Image by image: the product of the weights and an image's columns [O, L] is
      // that image's output as laid out in y, with no copy from a chunk-wide product.
      // Each product packs the weights again, which costs little for a short patch
      // (a first layer's 9 or 27 taps) and much for a long one.
      for (Index i = 0; i < nb; ++i) {
        T* dst = y.data() + (b0 + i) * o * l;
        gemm(false, false, o, l, k, w.data(), k, cols.data() + i * l, nb * l, dst, l);
        if (b != nullptr) {
          for (Index ch = 0; ch < o; ++ch) {
            for (Index q = 0; q < l; ++q) dst[ch * l + q] += b[ch];
          }
        }
      }
      return;
    }
    Tensor<T> prod = workspace<T>(Shape{o, nb * l});
    gemm(false, false, o, nb * l, k, w.data(), k, cols.data(), nb * l, prod.data(), nb * l);
    for (Index i = 0; i < nb; ++i) {
      for (Index ch = 0; ch < o; ++ch) {
        const T* src = prod.data() + ch * nb * l + i * l;
        T* dst = y.data() + ((b0 + i) * o + ch) * l;
        const T add = b != nullptr ? b[ch] : T(0);
        for (Index q = 0; q < l; ++q) dst[q] = src[q] + add;
      }
    }
  });
  return y;
}

/// dL/dx [N, C, H, W] of y = conv(x, w) for dL/dy = gy [N, O, oh, ow].
template <class T>
Tensor<T> conv2d_input_grad_values(const Tensor<T>& gy, const Tensor<T>& w,
                                   const Conv2dGeometry& g) {
  const Index n = gy.shape()[0], o = w.shape()[0], k = g.patch();
  const Index l = g.out_h() * g.out_w();
  // A stride-1 convolution's input gradient is itself a convolution: of gy, padded
  // by kernel - 1 - padding, with the kernel flipped and its channels swapped. Its
  // GEMM has the long inner dimension of a forward convolution, [C, O*kh*kw] x
  // [O*kh*kw, H*W], instead of [C*kh*kw, O] x [O, L] and a col2im, but it has a column
  // per input pixel instead of one per output. That pays while the input is at most
  // 1.2 times the output (size-keeping convolutions); an unpadded 3x3 convolution of
  // a 13x13 image has 1.4 times as many (input gradient 4.5 -> 3.8 ms for 25 images of
  // 64 channels by the col2im below, 0.80 -> 0.40 ms at 5x5).
  if (g.stride == 1 && g.kernel_h == g.kernel_w && g.padding < g.kernel_h &&
      g.height * g.width * 5 <= l * 6) {
    const Index kh = g.kernel_h, kw = g.kernel_w, taps = kh * kw;
    Tensor<T> flipped = Tensor<T>::empty(Shape{g.channels, o, kh, kw});
    const T* pw = w.data();
    T* pf = flipped.data();
    for (Index oc = 0; oc < o; ++oc) {
      for (Index ch = 0; ch < g.channels; ++ch) {
        const T* src = pw + (oc * g.channels + ch) * taps;
        T* dst = pf + (ch * o + oc) * taps;
        for (Index t = 0; t < taps; ++t) dst[t] = src[taps - 1 - t];
      }
    }
    const Conv2dGeometry tg{o, g.out_h(), g.out_w(), kh, kw, 1, kh - 1 - g.padding};
    return conv2d_values(gy, flipped, Tensor<T>(), tg);
  }
  Tensor<T> gx = zeros<T>(Shape{n, g.channels, g.height, g.width});
  const ConvChunks chunks = ConvChunks::of<T>(g, n);
  parallel_for(static_cast<std::size_t>(chunks.count), [&](std::size_t c) {
    const Index b0 = chunks.first(c), nb = chunks.size(c);
    Tensor<T> cols = workspace<T>(Shape{k, nb * l});
    Tensor<T> gm;
    const T* gmp = channel_major(gy.data() + b0 * o * l, o, l, nb, gm);
    gemm(true, false, k, nb * l, o, w.data(), k, gmp, nb * l, cols.data(), nb * l);
    col2im_add(cols.data(), g, nb, gx.data() + b0 * g.image());
  });
  return gx;
}

/// dL/dw [O, C, kh, kw] of y = conv(x, w) for dL/dy = gy [N, O, oh, ow].
template <class T>
Tensor<T> conv2d_weight_grad_values(const Tensor<T>& x, const Tensor<T>& gy,
                                    const Conv2dGeometry& g) {
  const Index n = x.shape()[0], o = gy.shape()[1], k = g.patch();
  const Index l = g.out_h() * g.out_w();
  Tensor<T> gw = Tensor<T>::empty(Shape{o, g.channels, g.kernel_h, g.kernel_w});
  const ConvChunks chunks = ConvChunks::of<T>(g, n);
  // The product of chunk c's output gradients and columns, into `dst` [O, C*kh*kw].
  const auto chunk_product = [&](std::size_t c, T* dst) {
    const Index b0 = chunks.first(c), nb = chunks.size(c);
    Tensor<T> cols = workspace<T>(Shape{k, nb * l});
    im2col(x.data() + b0 * g.image(), g, nb, cols.data());
    Tensor<T> gm;
    const T* gmp = channel_major(gy.data() + b0 * o * l, o, l, nb, gm);
    gemm(false, true, o, k, nb * l, gmp, nb * l, cols.data(), nb * l, dst, k);
  };
  if (chunks.count == 1) {
    chunk_product(0, gw.data());
    return gw;
  }
  // Behind batch norm the terms of this sum nearly cancel (the output gradient has
  // zero mean over the batch), so the chunks' partial products are added in double:
  // in a fixed number of groups of consecutive chunks, each summed in chunk order,
  // then the groups in order, so the result is the same on any number of threads.
  // The group sums live in the tensor block cache: a fresh vector of this size
  // would be mapped and faulted in on every call.
  constexpr Index kGroups = 8;
  const Index groups = std::min(kGroups, chunks.count);
  const Index size = o * k;
  Tensor<double> acc = workspace<double>(Shape{groups, size});
  parallel_for(static_cast<std::size_t>(groups), [&](std::size_t grp) {
    const Index lo = chunks.count * static_cast<Index>(grp) / groups;
    const Index hi = chunks.count * (static_cast<Index>(grp) + 1) / groups;
    Tensor<T> part = workspace<T>(Shape{o, k});
    double* sum = acc.data() + static_cast<Index>(grp) * size;
    for (Index c = lo; c < hi; ++c) {
      chunk_product(static_cast<std::size_t>(c), part.data());
      const T* p = part.data();
      if (c == lo) {
        for (Index i = 0; i < size; ++i) sum[i] = static_cast<double>(p[i]);
      } else {
        for (Index i = 0; i < size; ++i) sum[i] += static_cast<double>(p[i]);
      }
    }
  });
  double* total = acc.data();
  for (Index grp = 1; grp < groups; ++grp) {
    const double* s = acc.data() + grp * size;
    for (Index i = 0; i < size; ++i) total[i] += s[i];
  }
  for (Index i = 0; i < size; ++i) gw.data()[i] = static_cast<T>(total[i]);
  return gw;
}

template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& bias,
                 const Conv2dGeometry& g);
template <class T>
Tensor<T> conv2d_input_grad(const Tensor<T>& gy, const Tensor<T>& w, const Conv2dGeometry& g);
template <class T>
Tensor<T> conv2d_weight_grad(const Tensor<T>& x, const Tensor<T>& gy, const Conv2dGeometry& g);

// The three ops below are each other's backward rules, so convolutions are
// differentiable to any order while a recorded convolution keeps only its input
// and weight alive (no im2col columns). All three are linear in each argument:
//   y  = conv(x, w):         dx = input_grad(gy, w),  dw = weight_grad(x, gy)
//   dx = input_grad(gy, w):  d(gy) = conv(u, w),      dw = weight_grad(u, gy)
//   dw = weight_grad(x, gy): dx = input_grad(gy, v),  d(gy) = conv(x, v)
// where u and v are the gradients flowing into dx and dw. Each argument is read only by
// the other argument's gradient, so a node keeps it only when that other argument
// needs one (a first layer keeps no output gradient: its input is the data).

template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& bias,
                 const Conv2dGeometry& g) {
  Tensor<T> y = conv2d_values(x, w, bias, g);
  record(y, "conv2d", {&x, &w, &bias},
         [x = keep_for(x, w), w = keep_for(w, x), g](Node<T>& self, const Tensor<T>& gy) {
           Tensor<T> gx, gw, gb;
           if (self.needs_input_grad(0)) gx = conv2d_input_grad(gy, w, g);
           if (self.needs_input_grad(1)) gw = conv2d_weight_grad(x, gy, g);
           if (self.needs_input_grad(2)) gb = sum(gy, std::vector<Index>{0, 2, 3});
           return std::vector<Tensor<T>>{gx, gw, gb};
         });
  return y;
}

template <class T>
Tensor<T> conv2d_input_grad(const Tensor<T>& gy, const Tensor<T>& w, const Conv2dGeometry& g) {
  Tensor<T> gx = conv2d_input_grad_values(gy, w, g);
  record(gx, "conv2d_input_grad", {&gy, &w},
         [gy = keep_for(gy, w), w = keep_for(w, gy), g](Node<T>& self, const Tensor<T>& u) {
           Tensor<T> ggy, gw;
           if (self.needs_input_grad(0)) ggy = conv2d(u, w, Tensor<T>(), g);
           if (self.needs_input_grad(1)) gw = conv2d_weight_grad(u, gy, g);
           return std::vector<Tensor<T>>{ggy, gw};
         });
  return gx;
}

template <class T>
Tensor<T> conv2d_weight_grad(const Tensor<T>& x, const Tensor<T>& gy, const Conv2dGeometry& g) {
  Tensor<T> gw = conv2d_weight_grad_values(x, gy, g);
  record(gw, "conv2d_weight_grad", {&x, &gy},
         [x = keep_for(x, gy), gy = keep_for(gy, x), g](Node<T>& self, const Tensor<T>& v) {
           Tensor<T> gx, ggy;
           if (self.needs_input_grad(0)) gx = conv2d_input_grad(gy, v, g);
           if (self.needs_input_grad(1)) ggy = conv2d(x, v, Tensor<T>(), g);
           return std::vector<Tensor<T>>{gx, ggy};
         });
  return gw;
}

}  // namespace detail

/// 2-D cross-correlation of x [N, C, H, W] with weight [O, C, kh, kw] plus an optional
/// bias [O] (pass an undefined tensor for none). Output [N, O, out_h, out_w].
/// Computed as im2col + one GEMM per chunk of images; differentiable to any order.
template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = Tensor<T>(),
                 Index stride = 1, Index padding = 0) {
  METALEARN_CHECK(x.dim() == 4 && weight.dim() == 4 && x.shape()[1] == weight.shape()[1],
                  ShapeError, "conv2d: expected input [N, C, H, W] and weight [O, C, kh, kw], got ",
                  x.shape(), " and ", weight.shape());
  METALEARN_CHECK(stride >= 1 && padding >= 0, ValueError, "conv2d: stride ", stride,
                  " and padding ", padding, " must be >= 1 and >= 0");
  Conv2dGeometry geo{x.shape()[1],      x.shape()[2], x.shape()[3], weight.shape()[2],
                     weight.shape()[3], stride,       padding};
  METALEARN_CHECK(
      geo.height + 2 * padding >= geo.kernel_h && geo.width + 2 * padding >= geo.kernel_w,
      ShapeError, "conv2d: kernel ", weight.shape(), " larger than padded input ", x.shape());
  const Index o = weight.shape()[0];
  if (bias.defined()) {
    METALEARN_CHECK(bias.dim() == 1 && bias.shape()[0] == o, ShapeError, "conv2d: bias ",
                    bias.shape(), " does not match ", o, " output channels");
  }
  return detail::conv2d(x, weight, bias, geo);
}

namespace detail {

/// Which element of every window a max_pool2d chose, as its place in the window:
/// code i * k + j for row i, column j of the k x k window. One byte per window while
/// k <= 16, where a flat index into x takes four or eight: the graph holds one of
/// these per pooling layer and forward pass, and second-order MAML holds every
/// forward of every inner step.
template <class C>
struct PoolChoice {
  Shape in;   // x: [N, C, H, W]
  Shape out;  // y: [N, C, OH, OW]
  Index k = 0;
  Index s = 0;
  std::vector<C> code;  // one per window, in y's order
};

/// The first maximal element of every window of one plane (rows of w): its code and
/// value. A k x k window at stride s, K > 0 fixing k at compile time. Selects, not
/// branches: which element wins depends on the data and would be mispredicted half
/// the time.
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

#if defined(__AVX2__)
/// window_argmax for the 2x2 window at stride 2 of float planes, eight (or four)
/// windows at a time: the same maxima and codes, ties and NaNs included.
/// Deinterleaving shuffles split each input row into its even and odd columns, so the
/// four candidates of eight windows are four vectors; they are then compared in the
/// scalar order ((0,0), (0,1), (1,0), (1,1), strictly greater wins). The compiler does
/// not vectorize the scalar loop's stride-2 loads (one 28x28 -> 14x14 plane took
/// 0.86 us; this takes 0.24). A row of fewer than eight windows runs as two
/// overlapping groups of four, fewer than four as the scalar loop.
inline void window_argmax_2x2(const float* p, Index w, Index oh, Index ow, std::uint8_t* out,
                              float* values) {
  if (ow < 4) {
    window_argmax<2>(p, w, oh, ow, 2, 2, out, values);
    return;
  }
  for (Index y = 0; y < oh; ++y) {
    const float* r0 = p + 2 * y * w;  // the windows' first input row
    const float* r1 = r0 + w;
    std::uint8_t* o = out + y * ow;
    float* v = values + y * ow;
    // Windows z .. z+7. The shuffles leave them in the order 0 1 4 5 2 3 6 7 (each
    // 128-bit half deinterleaved on its own); one 64-bit permute restores it. The
    // codes are chosen as 32-bit lanes and packed to bytes.
    const auto eight = [&](Index z) {
      const __m256 a0 = _mm256_loadu_ps(r0 + 2 * z), b0 = _mm256_loadu_ps(r0 + 2 * z + 8);
      const __m256 a1 = _mm256_loadu_ps(r1 + 2 * z), b1 = _mm256_loadu_ps(r1 + 2 * z + 8);
      const __m256 cand[4] = {_mm256_shuffle_ps(a0, b0, 0x88), _mm256_shuffle_ps(a0, b0, 0xDD),
                              _mm256_shuffle_ps(a1, b1, 0x88), _mm256_shuffle_ps(a1, b1, 0xDD)};
      __m256 bv = cand[0];
      __m256i bi = _mm256_setzero_si256();
      for (int t = 1; t < 4; ++t) {
        const __m256 wins = _mm256_cmp_ps(cand[t], bv, _CMP_GT_OQ);
        bv = _mm256_blendv_ps(bv, cand[t], wins);
        bi = _mm256_blendv_epi8(bi, _mm256_set1_epi32(t), _mm256_castps_si256(wins));
      }
      bv = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(bv), 0xD8));
      bi = _mm256_permute4x64_epi64(bi, 0xD8);
      _mm256_storeu_ps(v + z, bv);
      const __m128i w16 =
          _mm_packus_epi32(_mm256_castsi256_si128(bi), _mm256_extracti128_si256(bi, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(o + z), _mm_packus_epi16(w16, w16));
    };
    const auto four = [&](Index z) {
      const __m128 a0 = _mm_loadu_ps(r0 + 2 * z), b0 = _mm_loadu_ps(r0 + 2 * z + 4);
      const __m128 a1 = _mm_loadu_ps(r1 + 2 * z), b1 = _mm_loadu_ps(r1 + 2 * z + 4);
      const __m128 cand[4] = {_mm_shuffle_ps(a0, b0, 0x88), _mm_shuffle_ps(a0, b0, 0xDD),
                              _mm_shuffle_ps(a1, b1, 0x88), _mm_shuffle_ps(a1, b1, 0xDD)};
      __m128 bv = cand[0];
      __m128i bi = _mm_setzero_si128();
      for (int t = 1; t < 4; ++t) {
        const __m128 wins = _mm_cmp_ps(cand[t], bv, _CMP_GT_OQ);
        bv = _mm_blendv_ps(bv, cand[t], wins);
        bi = _mm_blendv_epi8(bi, _mm_set1_epi32(t), _mm_castps_si128(wins));
      }
      _mm_storeu_ps(v + z, bv);
      const __m128i w16 = _mm_packus_epi32(bi, bi);
      const auto codes = static_cast<std::uint32_t>(_mm_cvtsi128_si32(_mm_packus_epi16(w16, w16)));
      std::memcpy(o + z, &codes, sizeof codes);
    };
    // The last group of a row overlaps the one before it where ow is not a multiple
    // of its width; it writes the same values again. Its loads end at column 2*ow - 1,
    // inside the row.
    if (ow >= 8) {
      Index z = 0;
      for (; z + 8 <= ow; z += 8) eight(z);
      if (z < ow) eight(ow - 8);
    } else {
      four(0);
      four(ow - 4);
    }
  }
}
#endif

/// One plane of max_pool2d: the vectorized 2x2 stride-2 case where the target has it,
/// else window_argmax.
template <class T, class C>
void pool_plane(const T* p, Index w, Index oh, Index ow, Index k, Index s, C* out, T* values) {
#if defined(__AVX2__)
  if constexpr (std::is_same_v<T, float> && std::is_same_v<C, std::uint8_t>) {
    if (k == 2 && s == 2) {
      window_argmax_2x2(p, w, oh, ow, out, values);
      return;
    }
  }
#endif
  if (k == 2) {
    window_argmax<2>(p, w, oh, ow, k, s, out, values);
  } else {
    window_argmax<0>(p, w, oh, ow, k, s, out, values);
  }
}

/// Runs f(plane, K) over the planes of a pooling, in parallel, where K is
/// std::integral_constant<Index, 2> for 2x2 windows (so that the code's division is
/// a shift) and 0 otherwise.
template <class C, class F>
void for_each_pool_plane(const PoolChoice<C>& pc, F&& f) {
  const Index planes = pc.in[0] * pc.in[1];
  const auto values = static_cast<std::size_t>(pc.in.numel());
  const auto run = [&](auto kk) {
    parallel_for_large(static_cast<std::size_t>(planes), values,
                       [&](std::size_t pl) { f(static_cast<Index>(pl), kk); });
  };
  if (pc.k == 2) {
    run(std::integral_constant<Index, 2>{});
  } else {
    run(std::integral_constant<Index, 0>{});
  }
}

/// The windows of one plane in order, with the offset in the input plane of the
/// element each chose: f(window, offset). K > 0 fixes the window size at compile time.
/// The geometry is read into locals first: f's stores would otherwise make every
/// window reload it.
template <Index K, class C, class F>
void for_each_choice(const PoolChoice<C>& pc, const C* __restrict code, F&& f) {
  const Index k = K > 0 ? K : pc.k, s = pc.s, w = pc.in[3], oh = pc.out[2], ow = pc.out[3];
  for (Index i = 0; i < oh; ++i) {
    for (Index j = 0; j < ow; ++j) {
      const auto c = static_cast<Index>(code[i * ow + j]);
      f(i * ow + j, (i * s + c / k) * w + j * s + c % k);
    }
  }
}

template <class T, class C>
Tensor<T> pool_scatter(const Tensor<T>& g, std::shared_ptr<const PoolChoice<C>> pc);

/// Records y = max_pool2d(x) for windows already chosen and values already gathered:
/// the backward scatters the gradient to the chosen elements.
template <class T, class C>
void record_pool_gather(Tensor<T>& y, const Tensor<T>& x, std::shared_ptr<const PoolChoice<C>> pc) {
  record(y, "max_pool2d", {&x}, [pc](Node<T>&, const Tensor<T>& g) {
    return std::vector<Tensor<T>>{pool_scatter(g, pc)};
  });
}

/// y[window] = x[the element the window chose]: max_pool2d's values for chosen windows
/// (the backward of pool_scatter, so of max_pool2d's backward).
template <class T, class C>
Tensor<T> pool_gather(const Tensor<T>& x, std::shared_ptr<const PoolChoice<C>> pc) {
  const Index h = pc->in[2], w = pc->in[3], oh = pc->out[2], ow = pc->out[3];
  Tensor<T> y = Tensor<T>::empty(pc->out);
  for_each_pool_plane(*pc, [&](Index pl, auto kk) {
    const T* __restrict src = x.data() + pl * h * w;
    T* __restrict dst = y.data() + pl * oh * ow;
    for_each_choice<decltype(kk)::value>(*pc, pc->code.data() + pl * oh * ow,
                                         [&](Index e, Index at) { dst[e] = src[at]; });
  });
  record_pool_gather(y, x, std::move(pc));
  return y;
}

/// v where `keep`, else +0, without a branch: the code a window chose is as likely to
/// be any of its four elements, and branching on it mispredicts about half the time.
template <class T>
T kept_or_zero(T v, bool keep) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  static_assert(sizeof(T) == sizeof(Bits));
  return std::bit_cast<T>(std::bit_cast<Bits>(v) & (Bits{0} - static_cast<Bits>(keep)));
}

#if defined(__AVX2__)
/// Windows z .. z+7 of one row of scatter_2x2_plane for float and byte codes: each
/// window's gradient masked by the four code comparisons, then interleaved into the
/// even and odd columns of the two input rows.
inline void scatter_2x2_eight(const float* g, const std::uint8_t* code, float* r0, float* r1) {
  const __m256 v = _mm256_loadu_ps(g);
  const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(code)));
  __m256 e[4];
  for (int t = 0; t < 4; ++t) {
    e[t] = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(c, _mm256_set1_epi32(t))));
  }
  float* rows[2] = {r0, r1};
  for (int r = 0; r < 2; ++r) {
    // Per 128-bit half: unpacklo gives windows 0 1 (4 5), unpackhi 2 3 (6 7).
    const __m256 lo = _mm256_unpacklo_ps(e[2 * r], e[2 * r + 1]);
    const __m256 hi = _mm256_unpackhi_ps(e[2 * r], e[2 * r + 1]);
    _mm256_storeu_ps(rows[r], _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(rows[r] + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
  }
}

/// scatter_2x2_eight for windows z .. z+3, in 128-bit vectors.
inline void scatter_2x2_four(const float* g, const std::uint8_t* code, float* r0, float* r1) {
  const __m128 v = _mm_loadu_ps(g);
  std::int32_t packed = 0;
  std::memcpy(&packed, code, sizeof packed);
  const __m128i c = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(packed));
  __m128 e[4];
  for (int t = 0; t < 4; ++t) {
    e[t] = _mm_and_ps(v, _mm_castsi128_ps(_mm_cmpeq_epi32(c, _mm_set1_epi32(t))));
  }
  float* rows[2] = {r0, r1};
  for (int r = 0; r < 2; ++r) {
    _mm_storeu_ps(rows[r], _mm_unpacklo_ps(e[2 * r], e[2 * r + 1]));
    _mm_storeu_ps(rows[r] + 4, _mm_unpackhi_ps(e[2 * r], e[2 * r + 1]));
  }
}
#endif

/// pool_scatter of one plane of 2x2 windows at stride 2, g and code in window order:
/// each element of x written once, with no zeroing pass before. The element a window
/// chose gets its gradient and the other three zero; the last column and row, which
/// no window covers when w or h is odd, are zeroed. Float planes of at least four
/// windows a row take eight (or four) windows at a time, the last group of a row
/// overlapping the one before it and writing the same values again.
template <class T, class C>
void scatter_2x2_plane(const T* __restrict g, const C* __restrict code, Index h, Index w, Index oh,
                       Index ow, T* __restrict x) {
  for (Index i = 0; i < oh; ++i) {
    T* __restrict r0 = x + 2 * i * w;
    T* __restrict r1 = r0 + w;
    const T* gi = g + i * ow;
    const C* ci = code + i * ow;
    bool done = false;
#if defined(__AVX2__)
    if constexpr (std::is_same_v<T, float> && std::is_same_v<C, std::uint8_t>) {
      if (ow >= 8) {
        Index z = 0;
        for (; z + 8 <= ow; z += 8) scatter_2x2_eight(gi + z, ci + z, r0 + 2 * z, r1 + 2 * z);
        if (z < ow)
          scatter_2x2_eight(gi + ow - 8, ci + ow - 8, r0 + 2 * (ow - 8), r1 + 2 * (ow - 8));
        done = true;
      } else if (ow >= 4) {
        scatter_2x2_four(gi, ci, r0, r1);
        scatter_2x2_four(gi + ow - 4, ci + ow - 4, r0 + 2 * (ow - 4), r1 + 2 * (ow - 4));
        done = true;
      }
    }
#endif
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

/// The gradient of max_pool2d: zeros of x's shape, with each window's gradient added
/// at the element it chose (added, since overlapping windows can choose the same one).
template <class T, class C>
Tensor<T> pool_scatter(const Tensor<T>& g, std::shared_ptr<const PoolChoice<C>> pc) {
  const Index h = pc->in[2], w = pc->in[3], oh = pc->out[2], ow = pc->out[3];
  Tensor<T> x = Tensor<T>::empty(pc->in);
  for_each_pool_plane(*pc, [&](Index pl, auto kk) {
    const T* __restrict src = g.data() + pl * oh * ow;
    T* __restrict dst = x.data() + pl * h * w;
    if (pc->k == 2 && pc->s == 2) {
      scatter_2x2_plane(src, pc->code.data() + pl * oh * ow, h, w, oh, ow, dst);
      return;
    }
    std::fill_n(dst, h * w, T{});
    const C* code = pc->code.data() + pl * oh * ow;
    if (pc->s >= pc->k) {  // disjoint windows: each element is chosen once at most
      for_each_choice<decltype(kk)::value>(*pc, code, [&](Index e, Index at) { dst[at] = src[e]; });
    } else {
      for_each_choice<decltype(kk)::value>(*pc, code,
                                           [&](Index e, Index at) { dst[at] += src[e]; });
    }
  });
  record(x, "max_pool2d_backward", {&g}, [pc](Node<T>&, const Tensor<T>& gg) {
    return std::vector<Tensor<T>>{pool_gather(gg, pc)};
  });
  return x;
}

}  // namespace detail

/// Max pooling with a square window over x [N, C, H, W]; stride defaults to the
/// window. The gradient flows to the first maximal element of each window.
template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, Index kernel, Index stride = 0) {
  if (stride == 0) stride = kernel;
  METALEARN_CHECK(x.dim() == 4, ShapeError, "max_pool2d: expected [N, C, H, W], got ", x.shape());
  METALEARN_CHECK(kernel >= 1 && stride >= 1, ValueError, "max_pool2d: kernel ", kernel,
                  " and stride ", stride, " must be >= 1");
  const Index n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
  METALEARN_CHECK(h >= kernel && w >= kernel, ShapeError, "max_pool2d: window ", kernel,
                  " larger than input ", x.shape());
  const Index oh = (h - kernel) / stride + 1;
  const Index ow = (w - kernel) / stride + 1;
  const T* p = x.data();
  // Each window's maximum and the code of the element it chose, recorded for the
  // backward. Planes are independent and write their own slices.
  const auto pool = [&]<class C>(C /*tag*/) {
    auto pc = std::make_shared<detail::PoolChoice<C>>();
    pc->in = x.shape();
    pc->out = Shape{n, c, oh, ow};
    pc->k = kernel;
    pc->s = stride;
    pc->code.resize(static_cast<std::size_t>(n * c * oh * ow));
    Tensor<T> y = Tensor<T>::empty(pc->out);
    parallel_for_large(
        static_cast<std::size_t>(n * c), static_cast<std::size_t>(x.numel()), [&](std::size_t pl) {
          const auto plane = static_cast<Index>(pl);
          detail::pool_plane(p + plane * h * w, w, oh, ow, kernel, stride,
                             pc->code.data() + plane * oh * ow, y.data() + plane * oh * ow);
        });
    detail::record_pool_gather(y, x, std::shared_ptr<const detail::PoolChoice<C>>(std::move(pc)));
    return y;
  };
  if (kernel <= 16) return pool(std::uint8_t{});
  return pool(Index{});
}

}  // namespace metalearn
