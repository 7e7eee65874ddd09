#pragma once
// Differentiable 2-D convolution (chunked im2col + GEMM) and max pooling, NCHW layout.

#include <algorithm>
#include <limits>
#include <memory>
#include <vector>

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

/// Images per chunk so that one chunk's im2col workspace ([C*kh*kw, images*L])
/// stays near 2 MiB: the workspace stays in cache, and no buffer grows with the
/// batch (a 600-image episode would otherwise need hundreds of MB of columns). A batch
/// of more than 16 images is also cut into at least four chunks of at least 16 images,
/// so that an intra-op pool has work for each thread (an 80-image episode's first and
/// last layers would otherwise be one or two chunks). The cut depends on the geometry
/// and the batch size only.
template <class T>
Index conv_chunk(const Conv2dGeometry& g, Index n) {
  constexpr Index kBudget = Index{2} << 20;
  constexpr Index kMinChunks = 4;
  constexpr Index kMinImages = 16;
  const Index per_image =
      std::max<Index>(1, g.patch() * g.out_h() * g.out_w() * static_cast<Index>(sizeof(T)));
  const Index balanced = std::max(kMinImages, (n + kMinChunks - 1) / kMinChunks);
  return std::clamp<Index>(std::min(kBudget / per_image, balanced), 1, std::max<Index>(n, 1));
}

/// Output columns q in [lo, hi) of one kernel offset read inside the image:
/// 0 <= q*stride - padding + offset < size.
inline void valid_range(Index out, Index size, Index stride, Index padding, Index offset, Index& lo,
                        Index& hi) {
  const Index shift = padding - offset;  // q*stride >= shift and q*stride < size + shift
  lo = shift <= 0 ? 0 : (shift + stride - 1) / stride;
  hi = size + shift <= 0 ? 0 : (size + shift + stride - 1) / stride;
  lo = std::min(lo, out);
  hi = std::clamp(hi, lo, out);
}

/// One row of the im2col matrix: channel c at kernel offset (i, j), the offset of
/// that channel's plane within an image, and the output rows [y_lo, y_hi) and
/// columns [x_lo, x_hi) whose window reads inside the image at that offset.
struct PatchRow {
  Index row, plane, i, j, y_lo, y_hi, x_lo, x_hi;
};

/// Calls fn(PatchRow) for every row of the im2col matrix, in row order: the loop
/// nest im2col and its adjoint col2im share.
template <class Fn>
void for_each_patch_row(const Conv2dGeometry& g, Fn&& fn) {
  for (Index c = 0; c < g.channels; ++c) {
    for (Index i = 0; i < g.kernel_h; ++i) {
      Index y_lo = 0, y_hi = 0;
      valid_range(g.out_h(), g.height, g.stride, g.padding, i, y_lo, y_hi);
      for (Index j = 0; j < g.kernel_w; ++j) {
        Index x_lo = 0, x_hi = 0;
        valid_range(g.out_w(), g.width, g.stride, g.padding, j, x_lo, x_hi);
        fn(PatchRow{(c * g.kernel_h + i) * g.kernel_w + j, c * g.height * g.width, i, j, y_lo, y_hi,
                    x_lo, x_hi});
      }
    }
  }
}

/// Strided windows (stride > 1) read through an offset table instead of the row
/// loops below, whose per-row overhead dominates on the short rows of small strided
/// outputs: the images are first copied into a zero-bordered buffer (when padded),
/// so every window lies inside it, and column b*L + q of the im2col row of channel c
/// at kernel offset (i, j) reads element offsets[b*L + q] + c*plane + i*pitch + j.
/// One table serves every row, so each row is a single loop over all nb*L columns.
struct StridedWindows {
  Index pitch = 0, plane = 0;  // row length and plane size of the (padded) images
  std::vector<Index> offsets;  // [nb * out_h * out_w]

  StridedWindows(const Conv2dGeometry& g, Index nb)
      : pitch(g.width + 2 * g.padding),
        plane((g.height + 2 * g.padding) * (g.width + 2 * g.padding)) {
    const Index oh = g.out_h(), ow = g.out_w();
    offsets.reserve(static_cast<std::size_t>(nb * oh * ow));
    for (Index b = 0; b < nb; ++b) {
      for (Index y = 0; y < oh; ++y) {
        for (Index x = 0; x < ow; ++x)
          offsets.push_back(b * g.channels * plane + y * g.stride * pitch + x * g.stride);
      }
    }
  }
};

/// Copies the `nb` images at x into `padded` [nb, C, H+2p, W+2p] with a zero border.
template <class T>
void pad_images(const T* x, const Conv2dGeometry& g, Index nb, T* padded) {
  const Index pitch = g.width + 2 * g.padding;
  const Index plane = (g.height + 2 * g.padding) * pitch;
  for (Index p = 0; p < nb * g.channels; ++p) {
    T* d = padded + p * plane;
    const T* src = x + p * g.height * g.width;
    std::fill_n(d, g.padding * pitch, T(0));
    for (Index y = 0; y < g.height; ++y) {
      T* row = d + (g.padding + y) * pitch;
      std::fill_n(row, g.padding, T(0));
      std::copy_n(src + y * g.width, g.width, row + g.padding);
      std::fill_n(row + g.padding + g.width, g.padding, T(0));
    }
    std::fill_n(d + (g.padding + g.height) * pitch, g.padding * pitch, T(0));
  }
}

/// im2col of `nb` images starting at x: cols [C*kh*kw, nb*L], column b*L + q.
template <class T>
void im2col(const T* x, const Conv2dGeometry& g, Index nb, T* cols) {
  const Index ow = g.out_w(), l = g.out_h() * ow, ncols = nb * l;
  if (g.stride > 1) {
    const StridedWindows win(g, nb);
    Tensor<T> padded;
    const T* src = x;
    if (g.padding > 0) {
      padded = Tensor<T>::empty(Shape{nb * g.channels * win.plane});
      pad_images(x, g, nb, padded.data());
      src = padded.data();
    }
    const Index* off = win.offsets.data();
    for (Index c = 0; c < g.channels; ++c) {
      for (Index i = 0; i < g.kernel_h; ++i) {
        for (Index j = 0; j < g.kernel_w; ++j) {
          T* d = cols + ((c * g.kernel_h + i) * g.kernel_w + j) * ncols;
          const T* s = src + c * win.plane + i * win.pitch + j;
          for (Index q = 0; q < ncols; ++q) d[q] = s[off[q]];
        }
      }
    }
    return;
  }
  for_each_patch_row(g, [&](const PatchRow& p) {
    const auto [r, off, i, j, y_lo, y_hi, x_lo, x_hi] = p;
    T* row = cols + r * ncols;
    for (Index b = 0; b < nb; ++b) {
      const T* plane = x + b * g.image() + off;
      T* d = row + b * l;
      if (ow == g.width && y_lo < y_hi && x_lo < x_hi) {
        // Output position m reads input m + shift: one contiguous copy from the
        // first valid position to the last, then zeros where the window
        // crosses the left or right edge (or lies above or below the image).
        const Index shift = (i - g.padding) * g.width + (j - g.padding);
        const Index first = y_lo * ow + x_lo, last = (y_hi - 1) * ow + x_hi;
        std::fill_n(d, first, T(0));
        std::copy_n(plane + first + shift, last - first, d + first);
        std::fill(d + last, d + l, T(0));
        for (Index y = y_lo; y < y_hi; ++y) {
          std::fill_n(d + y * ow, x_lo, T(0));
          std::fill(d + y * ow + x_hi, d + (y + 1) * ow, T(0));
        }
        continue;
      }
      std::fill_n(d, y_lo * ow, T(0));
      for (Index y = y_lo; y < y_hi; ++y) {
        T* dy = d + y * ow;
        const T* src = plane + (y - g.padding + i) * g.width;
        std::fill_n(dy, x_lo, T(0));
        std::copy_n(src + x_lo - g.padding + j, x_hi - x_lo, dy + x_lo);
        std::fill(dy + x_hi, dy + ow, T(0));
      }
      std::fill(d + y_hi * ow, d + l, T(0));
    }
  });
}

/// col2im, the adjoint of im2col: adds cols [C*kh*kw, nb*L] into `nb` images at x.
/// Every pixel receives its terms in the order of the im2col rows, whichever path
/// runs, so the result does not depend on the path.
template <class T>
void col2im_add(const T* cols, const Conv2dGeometry& g, Index nb, T* x) {
  const Index ow = g.out_w(), l = g.out_h() * ow, ncols = nb * l;
  if (g.stride > 1) {
    const StridedWindows win(g, nb);
    Tensor<T> padded;
    T* dst = x;
    if (g.padding > 0) {
      padded = Tensor<T>::empty(Shape{nb * g.channels * win.plane});
      pad_images(x, g, nb, padded.data());
      dst = padded.data();
    }
    const Index* off = win.offsets.data();
    for (Index c = 0; c < g.channels; ++c) {
      for (Index i = 0; i < g.kernel_h; ++i) {
        for (Index j = 0; j < g.kernel_w; ++j) {
          const T* s = cols + ((c * g.kernel_h + i) * g.kernel_w + j) * ncols;
          T* d = dst + c * win.plane + i * win.pitch + j;
          for (Index q = 0; q < ncols; ++q) d[off[q]] += s[q];
        }
      }
    }
    if (g.padding > 0) {  // the interior back into x; terms on the border fall away
      for (Index p = 0; p < nb * g.channels; ++p) {
        const T* src = padded.data() + p * win.plane + g.padding * win.pitch + g.padding;
        T* d = x + p * g.height * g.width;
        for (Index y = 0; y < g.height; ++y)
          std::copy_n(src + y * win.pitch, g.width, d + y * g.width);
      }
    }
    return;
  }
  for_each_patch_row(g, [&](const PatchRow& p) {
    const auto [r, off, i, j, y_lo, y_hi, x_lo, x_hi] = p;
    const T* row = cols + r * ncols;
    for (Index b = 0; b < nb; ++b) {
      T* plane = x + b * g.image() + off;
      const T* s = row + b * l;
      for (Index y = y_lo; y < y_hi; ++y) {
        const T* sy = s + y * ow;
        T* dst = plane + (y - g.padding + i) * g.width + x_lo - g.padding + j;  // column x_lo
        for (Index q = x_lo; q < x_hi; ++q) dst[q - x_lo] += sy[q];
      }
    }
  });
}

/// Copies images [b0, b0+nb) of y [N, O, L] into m [O, nb*L] (column b*L + q).
template <class T>
void gather_channels(const T* y, Index o, Index l, Index nb, T* m) {
  for (Index b = 0; b < nb; ++b) {
    for (Index c = 0; c < o; ++c) std::copy_n(y + (b * o + c) * l, l, m + c * nb * l + b * l);
  }
}

/// nb images of y [N, O, L] (from `y` on) as one [O, nb*L] matrix: y itself for one
/// image, else a copy gathered into `storage`.
template <class T>
const T* channel_major(const T* y, Index o, Index l, Index nb, Tensor<T>& storage) {
  if (nb == 1) return y;
  storage = Tensor<T>::empty(Shape{o, nb * l});
  gather_channels(y, o, l, nb, storage.data());
  return storage.data();
}

/// The chunks of images [b0, b0 + nb) that the convolution loops below process
/// independently (on the intra-op pool when the thread has one, see IntraOpScope).
/// How the batch is cut depends on the geometry only, never on the thread count.
struct ConvChunks {
  Index images = 0, per_chunk = 1, count = 0;
  template <class T>
  static ConvChunks of(const Conv2dGeometry& g, Index n) {
    const Index per = conv_chunk<T>(g, n);
    return ConvChunks{n, per, (n + per - 1) / per};
  }
  [[nodiscard]] Index first(std::size_t c) const { return static_cast<Index>(c) * per_chunk; }
  [[nodiscard]] Index size(std::size_t c) const { return std::min(per_chunk, images - first(c)); }
};

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
    Tensor<T> cols = Tensor<T>::empty(Shape{k, nb * l});
    im2col(x.data() + b0 * g.image(), g, nb, cols.data());
    if (nb == 1) {
      // One image: the product [O, L] is the image's output as laid out in y.
      T* dst = y.data() + b0 * o * l;
      gemm(false, false, o, l, k, w.data(), k, cols.data(), l, dst, l);
      if (b != nullptr) {
        for (Index ch = 0; ch < o; ++ch) {
          for (Index q = 0; q < l; ++q) dst[ch * l + q] += b[ch];
        }
      }
      return;
    }
    Tensor<T> prod = Tensor<T>::empty(Shape{o, nb * l});
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
  Tensor<T> gx = zeros<T>(Shape{n, g.channels, g.height, g.width});
  const ConvChunks chunks = ConvChunks::of<T>(g, n);
  parallel_for(static_cast<std::size_t>(chunks.count), [&](std::size_t c) {
    const Index b0 = chunks.first(c), nb = chunks.size(c);
    Tensor<T> cols = Tensor<T>::empty(Shape{k, nb * l});
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
    Tensor<T> cols = Tensor<T>::empty(Shape{k, nb * l});
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
  constexpr Index kGroups = 8;
  const Index groups = std::min(kGroups, chunks.count);
  const auto size = static_cast<std::size_t>(o * k);
  std::vector<std::vector<double>> acc(static_cast<std::size_t>(groups),
                                       std::vector<double>(size, 0.0));
  parallel_for(static_cast<std::size_t>(groups), [&](std::size_t grp) {
    const Index lo = chunks.count * static_cast<Index>(grp) / groups;
    const Index hi = chunks.count * (static_cast<Index>(grp) + 1) / groups;
    Tensor<T> part = Tensor<T>::empty(Shape{o, k});
    std::vector<double>& sum = acc[grp];
    for (Index c = lo; c < hi; ++c) {
      chunk_product(static_cast<std::size_t>(c), part.data());
      for (std::size_t i = 0; i < size; ++i) sum[i] += static_cast<double>(part.data()[i]);
    }
  });
  for (Index grp = 1; grp < groups; ++grp) {
    for (std::size_t i = 0; i < size; ++i) acc[0][i] += acc[static_cast<std::size_t>(grp)][i];
  }
  for (std::size_t i = 0; i < size; ++i) gw.data()[i] = static_cast<T>(acc[0][i]);
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
// where u and v are the gradients flowing into dx and dw.

template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& bias,
                 const Conv2dGeometry& g) {
  Tensor<T> y = conv2d_values(x, w, bias, g);
  record(y, "conv2d", {&x, &w, &bias}, [x, w, g](Node<T>& self, const Tensor<T>& gy) {
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
  record(gx, "conv2d_input_grad", {&gy, &w}, [gy, w, g](Node<T>& self, const Tensor<T>& u) {
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
  record(gw, "conv2d_weight_grad", {&x, &gy}, [x, gy, g](Node<T>& self, const Tensor<T>& v) {
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
  auto idx = std::make_shared<std::vector<Index>>(static_cast<std::size_t>(n * c * oh * ow));
  const T* p = x.data();
  // Planes are independent and write their own slices of idx.
  parallel_for_large(static_cast<std::size_t>(n * c), static_cast<std::size_t>(x.numel()),
                     [&](std::size_t pl) {
                       const auto plane = static_cast<Index>(pl);
                       const Index base = plane * h * w;
                       std::size_t q = pl * static_cast<std::size_t>(oh * ow);
                       for (Index y = 0; y < oh; ++y) {
                         for (Index z = 0; z < ow; ++z) {
                           Index best = base + y * stride * w + z * stride;
                           T bv = p[best];
                           for (Index i = 0; i < kernel; ++i) {
                             for (Index j = 0; j < kernel; ++j) {
                               const Index at = base + (y * stride + i) * w + z * stride + j;
                               if (p[at] > bv) {
                                 bv = p[at];
                                 best = at;
                               }
                             }
                           }
                           (*idx)[q++] = best;
                         }
                       }
                     });
  return take(x, std::shared_ptr<const std::vector<Index>>(std::move(idx)), Shape{n, c, oh, ow});
}

}  // namespace metalearn
