#pragma once
/// @file
/// Differentiable 2-D max pooling, NCHW layout: the window choices are kept (one byte
/// per window while the window is at most 16 x 16) and the backward scatters through
/// them, itself a recorded op, so every order of derivative is exact.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "metalearn/autograd/node.hpp"
#include "metalearn/core/thread_pool.hpp"
#include "metalearn/tensor/detail/simd_kernels.hpp"
#include "metalearn/tensor/factory.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn {

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
