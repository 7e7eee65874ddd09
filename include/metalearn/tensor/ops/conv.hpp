#pragma once
/// @file
/// Differentiable 2-D convolution (chunked im2col + GEMM), NCHW layout. Max pooling is
/// in pool.hpp, batch normalisation in batch_norm.hpp.

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "metalearn/autograd/node.hpp"
#include "metalearn/core/thread_pool.hpp"
#include "metalearn/tensor/detail/simd_kernels.hpp"
#include "metalearn/tensor/gemm.hpp"
#include "metalearn/tensor/ops/elementwise.hpp"
#include "metalearn/tensor/ops/linalg.hpp"
#include "metalearn/tensor/ops/shape_ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn {

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

}  // namespace metalearn
