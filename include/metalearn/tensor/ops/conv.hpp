#pragma once
// Differentiable 2-D convolution (im2col + GEMM) and max pooling, NCHW layout.

#include <limits>
#include <memory>
#include <vector>

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

/// For each (patch row, output position) of one image, the flat offset it reads
/// in that image, or -1 where the window lies over the padding.
inline std::shared_ptr<const std::vector<Index>> unfold_index(const Conv2dGeometry& g) {
  const Index oh = g.out_h();
  const Index ow = g.out_w();
  auto idx = std::make_shared<std::vector<Index>>(static_cast<std::size_t>(g.patch() * oh * ow));
  Index q = 0;
  for (Index c = 0; c < g.channels; ++c) {
    for (Index i = 0; i < g.kernel_h; ++i) {
      for (Index j = 0; j < g.kernel_w; ++j) {
        for (Index y = 0; y < oh; ++y) {
          const Index r = y * g.stride - g.padding + i;
          for (Index x = 0; x < ow; ++x) {
            const Index s = x * g.stride - g.padding + j;
            (*idx)[static_cast<std::size_t>(q++)] =
                (r >= 0 && r < g.height && s >= 0 && s < g.width) ? (c * g.height + r) * g.width + s
                                                                  : -1;
          }
        }
      }
    }
  }
  return idx;
}

template <class T>
Tensor<T> fold(const Tensor<T>& cols, const Conv2dGeometry& geo,
               std::shared_ptr<const std::vector<Index>> index, Index n);

/// im2col: [N, C, H, W] -> [C*kh*kw, N*L] with L = out_h*out_w: one column per
/// output position of every image, so the whole batch is one GEMM.
template <class T>
Tensor<T> unfold(const Tensor<T>& x, const Conv2dGeometry& geo,
                 std::shared_ptr<const std::vector<Index>> index) {
  const Index n = x.shape()[0];
  const Index k = geo.patch();
  const Index l = geo.out_h() * geo.out_w();
  Tensor<T> out = Tensor<T>::empty(Shape{k, n * l});
  const T* src = x.data();
  T* dst = out.data();
  const Index* id = index->data();
  for (Index r = 0; r < k; ++r) {
    const Index* row = id + r * l;
    for (Index b = 0; b < n; ++b) {
      const T* img = src + b * geo.image();
      T* o = dst + (r * n + b) * l;
      for (Index q = 0; q < l; ++q) o[q] = row[q] >= 0 ? img[row[q]] : T(0);
    }
  }
  record(out, "unfold", {&x}, [geo, index, n](Node<T>&, const Tensor<T>& g) {
    return std::vector<Tensor<T>>{fold(g, geo, index, n)};
  });
  return out;
}

/// col2im, the adjoint of unfold: [C*kh*kw, N*L] -> [N, C, H, W] (overlaps add).
template <class T>
Tensor<T> fold(const Tensor<T>& cols, const Conv2dGeometry& geo,
               std::shared_ptr<const std::vector<Index>> index, Index n) {
  const Index k = geo.patch();
  const Index l = geo.out_h() * geo.out_w();
  Tensor<T> out = zeros<T>(Shape{n, geo.channels, geo.height, geo.width});
  const T* src = cols.data();
  T* dst = out.data();
  const Index* id = index->data();
  for (Index r = 0; r < k; ++r) {
    const Index* row = id + r * l;
    for (Index b = 0; b < n; ++b) {
      T* img = dst + b * geo.image();
      const T* c = src + (r * n + b) * l;
      for (Index q = 0; q < l; ++q) {
        if (row[q] >= 0) img[row[q]] += c[q];
      }
    }
  }
  record(out, "fold", {&cols}, [geo, index](Node<T>&, const Tensor<T>& g) {
    return std::vector<Tensor<T>>{unfold(g, geo, index)};
  });
  return out;
}

}  // namespace detail

/// 2-D cross-correlation of x [N, C, H, W] with weight [O, C, kh, kw] plus an optional
/// bias [O] (pass an undefined tensor for none). Output [N, O, out_h, out_w].
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
  const Index n = x.shape()[0];
  Tensor<T> cols = detail::unfold(x, geo, detail::unfold_index(geo));  // [K, N*L]
  Tensor<T> w2 = reshape(weight, std::vector<Index>{o, geo.patch()});  // [O, K]
  Tensor<T> out = mm(w2, cols, false, false);                          // [O, N*L]
  out = permute(reshape(out, std::vector<Index>{o, n, geo.out_h() * geo.out_w()}), {1, 0, 2});
  out = reshape(out, std::vector<Index>{n, o, geo.out_h(), geo.out_w()});
  if (bias.defined()) {
    METALEARN_CHECK(bias.dim() == 1 && bias.shape()[0] == o, ShapeError, "conv2d: bias ",
                    bias.shape(), " does not match ", o, " output channels");
    out = add(out, reshape(bias, std::vector<Index>{1, o, 1, 1}));
  }
  return out;
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
  std::size_t q = 0;
  for (Index plane = 0; plane < n * c; ++plane) {
    const Index base = plane * h * w;
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
  }
  return take(x, std::shared_ptr<const std::vector<Index>>(std::move(idx)), Shape{n, c, oh, ow});
}

}  // namespace metalearn
