#pragma once
/// @file
/// Differentiable batch normalisation over the channel dimension 1 (NC, NCL, NCHW), in
/// training mode (batch statistics, running statistics updated) and evaluation mode.
/// Training mode's backward runs fused per-channel passes (sums in double, in the
/// dispatched kernels of src/tensor/simd_kernels.cpp) and records its own backward as
/// ops whose backward is fused as well, so every order of derivative stays exact.
// SPDX-License-Identifier: MIT

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "metalearn/autograd/grad_mode.hpp"
#include "metalearn/autograd/node.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/core/thread_pool.hpp"
#include "metalearn/tensor/detail/kernels.hpp"
#include "metalearn/tensor/detail/simd_kernels.hpp"
#include "metalearn/tensor/factory.hpp"
#include "metalearn/tensor/ops/elementwise.hpp"
#include "metalearn/tensor/ops/reduction.hpp"
#include "metalearn/tensor/ops/shape_ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn {

namespace detail {

/// What the backward passes of a training-mode batch norm share: x's layout as
/// n x c x s (batch, channels, values per plane) and the forward's per-channel mean
/// and biased variance, so no backward pass recomputes them.
template <class T>
struct BatchNormStats {
  Index n = 0;
  Index c = 0;
  Index s = 0;
  T eps{};
  std::vector<T> mean;
  std::vector<T> var;

  /// 1 / sqrt(var + eps) of channel ch, in double.
  double inv(Index ch) const {
    return 1.0 / std::sqrt(static_cast<double>(var[static_cast<std::size_t>(ch)]) +
                           static_cast<double>(eps));
  }
  /// Values per channel.
  double count() const { return static_cast<double>(n * s); }
  /// Offset of row b of channel ch.
  Index row(Index b, Index ch) const { return (b * c + ch) * s; }
  /// fn(ch) for every channel, spread over the intra-op pool for large tensors (each
  /// channel computed exactly as on one thread).
  template <class F>
  void for_channels(F&& fn) const {
    parallel_for_large(static_cast<std::size_t>(c), static_cast<std::size_t>(n * c * s),
                       [&](std::size_t ch) { fn(static_cast<Index>(ch)); });
  }
};

/// Per channel of x and g: sum g and sum g * (x - mu), in double.
template <class T>
void channel_sums(const BatchNormStats<T>& st, const T* x, const T* g, Index ch, double& sg,
                  double& sgx) {
  double sums[2];
  const Index at = st.row(0, ch);
  metalearn::detail::bn_backward_sums(x + at, g + at, st.n, st.c * st.s, st.s,
                                      st.mean[static_cast<std::size_t>(ch)], sums);
  sg = sums[0];
  sgx = sums[1];
}

/// The dimensions a batch norm reduces over: all but the channel dimension 1.
template <class T>
std::vector<Index> batch_norm_dims(const Tensor<T>& x) {
  std::vector<Index> dims{0};
  for (Index d = 2; d < x.dim(); ++d) dims.push_back(d);
  return dims;
}

/// The batch-norm statistics of x recomputed with differentiable ops, for the
/// backward passes recorded under create_graph (third and higher derivatives):
/// inv = 1 / sqrt(var + eps) and xhat = (x - mean) * inv, broadcastable over x.
template <class T>
struct BatchNormTerms {
  std::vector<Index> dims;    // the reduced dimensions: all but 1
  std::vector<Index> bshape;  // [1, C, 1, ...]
  Tensor<T> inv;
  Tensor<T> xhat;

  BatchNormTerms(const Tensor<T>& x, T eps) : dims(batch_norm_dims(x)) {
    bshape.assign(static_cast<std::size_t>(x.dim()), 1);
    bshape[1] = x.shape()[1];
    Tensor<T> xc = sub(x, mean(x, dims, true));
    inv = reciprocal(metalearn::sqrt(add_scalar(mean(square(xc), dims, true), eps)));
    xhat = mul(xc, inv);
  }
  /// Per-channel mean of v, broadcastable.
  Tensor<T> avg(const Tensor<T>& v) const { return mean(v, dims, true); }
  /// P v = v - mean(v) - xhat * mean(v * xhat): the projection the normalisation's
  /// Jacobian applies (d xhat / d x = inv * P, P symmetric).
  Tensor<T> project(const Tensor<T>& v) const {
    return sub(sub(v, avg(v)), mul(xhat, avg(mul(v, xhat))));
  }
  /// A [C] tensor broadcastable over x.
  Tensor<T> channel(const Tensor<T>& v) const { return reshape(v, bshape); }
  /// Sum over everything but the channel dimension, as [C].
  Tensor<T> channel_sum(const Tensor<T>& v) const {
    return reshape(sum(v, dims), std::vector<Index>{bshape[1]});
  }
};

/// Per channel of (x, g), the two sums batch norm's backward is made of, in double:
/// sum g and sum g * (x - mean).
struct ChannelGradSums {
  std::vector<double> g, gx;
};

/// Values of batch norm's backward, fused per channel: dx (when gx is non-null), the
/// weight's gradient sum g * xhat and the bias's sum g (when gw / gb are non-null),
/// and the channel sums they are made of (when `sums` is non-null).
template <class T>
void batch_norm_backward_values(const BatchNormStats<T>& st, const Tensor<T>& x, const Tensor<T>& g,
                                const Tensor<T>& weight, std::type_identity_t<Tensor<T>>* gx,
                                std::type_identity_t<Tensor<T>>* gw,
                                std::type_identity_t<Tensor<T>>* gb,
                                ChannelGradSums* sums = nullptr) {
  if (gx != nullptr) *gx = Tensor<T>::empty(x.shape());
  if (gw != nullptr) *gw = Tensor<T>::empty(Shape{st.c});
  if (gb != nullptr) *gb = Tensor<T>::empty(Shape{st.c});
  if (sums != nullptr) {
    sums->g.assign(static_cast<std::size_t>(st.c), 0.0);
    sums->gx.assign(static_cast<std::size_t>(st.c), 0.0);
  }
  const T* px = x.data();
  const T* pg = g.data();
  st.for_channels([&](Index ch) {
    double sg = 0.0, sgx = 0.0;
    channel_sums(st, px, pg, ch, sg, sgx);
    if (sums != nullptr) {
      sums->g[static_cast<std::size_t>(ch)] = sg;
      sums->gx[static_cast<std::size_t>(ch)] = sgx;
    }
    const double inv = st.inv(ch);
    if (gw != nullptr) gw->data()[ch] = static_cast<T>(sgx * inv);
    if (gb != nullptr) gb->data()[ch] = static_cast<T>(sg);
    if (gx == nullptr) return;
    const T mu = st.mean[static_cast<std::size_t>(ch)];
    const double gamma = weight.defined() ? static_cast<double>(weight.data()[ch]) : 1.0;
    // dx = gamma*inv*((g - mean_g) - (x - mu)*inv*mean_gxhat), the two differences
    // formed first: scaling before subtracting would cancel when a mean is large
    // against the spread (common behind a ReLU).
    const T a = static_cast<T>(gamma * inv);
    const T k = static_cast<T>(inv * inv * sgx / st.count());
    const T mg = static_cast<T>(sg / st.count());
    const Index s = st.s;
    for (Index b = 0; b < st.n; ++b) {
      const Index at = st.row(b, ch);
      const T* __restrict row = px + at;
      const T* __restrict grow = pg + at;
      T* __restrict out = gx->data() + at;
      for (Index i = 0; i < s; ++i) out[i] = a * ((grow[i] - mg) - k * (row[i] - mu));
    }
  });
}

/// Runs `rows.template operator()<WantG, WantX>(dg, dx)` with the outputs that are
/// defined as compile-time flags (undefined ones passed as nullptr), so that each pair
/// of wanted outputs gets its own loop without a test inside it.
template <class T, class Rows>
void for_wanted_outputs(const Rows& rows, Tensor<T>& dg, Tensor<T>& dx) {
  if (dg.defined() && dx.defined()) {
    rows.template operator()<true, true>(dg.data(), dx.data());
  } else if (dg.defined()) {
    rows.template operator()<true, false>(dg.data(), nullptr);
  } else if (dx.defined()) {
    rows.template operator()<false, true>(nullptr, dx.data());
  }
}

/// Batch norm's input gradient as a recorded op of (x, g, weight):
/// @code{.unparsed}
///   gx = gamma * inv * P g,   P g = g - mean(g) - xhat * mean(g * xhat),
/// @endcode
/// whose own backward (MAML's second order through batch norm) is one fused pass per
/// channel: for an upstream gradient a,
/// @code{.unparsed}
///   d g     = gamma * inv * P a
///   d gamma = inv * sum(a * P g)
///   d x     = -gamma * inv^2 * (xhat * mean(a * P g) + mean(g * xhat) * P a
///                               + mean(a * xhat) * P g),
/// @endcode
/// and the same formulas in differentiable ops when that backward is itself recorded.
///
/// `values`, when defined, are gx's values already computed (batch norm's backward
/// computes gx and the weight's gradient in one pass).
template <class T>
Tensor<T> batch_norm_input_grad(const std::shared_ptr<const BatchNormStats<T>>& st,
                                const Tensor<T>& x, const Tensor<T>& g, const Tensor<T>& weight,
                                const Tensor<T>& values = Tensor<T>()) {
  Tensor<T> gx = values;
  if (!gx.defined()) batch_norm_backward_values(*st, x, g, weight, &gx, nullptr, nullptr);
  metalearn::detail::record(
      gx, "batch_norm_input_grad", {&x, &g, &weight},
      [st, x, g, weight](Node<T>& self, const Tensor<T>& a) {
        const bool want_x = self.needs_input_grad(0);
        const bool want_g = self.needs_input_grad(1);
        const bool want_w = self.needs_input_grad(2) && weight.defined();
        if (autograd::is_grad_enabled()) {
          const BatchNormTerms<T> t(x, st->eps);
          const Tensor<T> scale = weight.defined() ? mul(t.inv, t.channel(weight)) : t.inv;
          const Tensor<T> pa = t.project(a);
          const Tensor<T> pg = t.project(g);
          Tensor<T> dx, dg, dw;
          if (want_g) dg = mul(scale, pa);
          if (want_w) dw = t.channel_sum(mul(mul(a, pg), t.inv));
          if (want_x) {
            const Tensor<T> terms =
                add(add(mul(t.xhat, t.avg(mul(a, pg))), mul(t.avg(mul(g, t.xhat)), pa)),
                    mul(t.avg(mul(a, t.xhat)), pg));
            dx = neg(mul(mul(scale, t.inv), terms));
          }
          return std::vector<Tensor<T>>{dx, dg, dw};
        }
        Tensor<T> dx = want_x ? Tensor<T>::empty(x.shape()) : Tensor<T>();
        Tensor<T> dg = want_g ? Tensor<T>::empty(x.shape()) : Tensor<T>();
        Tensor<T> dw = want_w ? Tensor<T>::empty(Shape{st->c}) : Tensor<T>();
        const T* px = x.data();
        const T* pg = g.data();
        const T* pa = a.data();
        st->for_channels([&](Index ch) {
          const T mu = st->mean[static_cast<std::size_t>(ch)];
          double sums[5];
          const Index at = st->row(0, ch);
          metalearn::detail::bn_second_order_sums(px + at, pg + at, pa + at, st->n, st->c * st->s,
                                                  st->s, mu, sums);
          const double sg = sums[0], sgx = sums[1], sa = sums[2], sax = sums[3], sag = sums[4];
          const double m = st->count();
          const double inv = st->inv(ch);
          const double gamma = weight.defined() ? static_cast<double>(weight.data()[ch]) : 1.0;
          const double mg = sg / m, mgx = sgx * inv / m;        // mean(g), mean(g * xhat)
          const double ma = sa / m, maxh = sax * inv / m;       // mean(a), mean(a * xhat)
          const double sapg = sag - mg * sa - mgx * inv * sax;  // sum(a * P g)
          if (want_w) dw.data()[ch] = static_cast<T>(inv * sapg);
          if (!want_x && !want_g) return;
          const T tinv = static_cast<T>(inv);
          const T tmg = static_cast<T>(mg), tmgx = static_cast<T>(mgx);
          const T tma = static_cast<T>(ma), tmaxh = static_cast<T>(maxh);
          const T tmapg = static_cast<T>(sapg / m);
          const T xs = static_cast<T>(-gamma * inv * inv);
          const T gs = static_cast<T>(gamma * inv);
          // One loop per pair of wanted outputs, its pointers restrict-qualified and
          // its coefficients in locals (copies, not captures): a test, a tensor's
          // data() or a captured reference inside the loop keeps it scalar, since
          // every store might change what the reference reads.
          const auto rows = [&]<bool WantG, bool WantX>(T* odg, T* odx) {
            const T c_mu = mu, c_inv = tinv, c_mg = tmg, c_mgx = tmgx, c_ma = tma;
            const T c_maxh = tmaxh, c_mapg = tmapg, c_xs = xs, c_gs = gs;
            const Index s = st->s;
            for (Index b = 0; b < st->n; ++b) {
              const Index at = st->row(b, ch);
              const T* __restrict xr = px + at;
              const T* __restrict gr = pg + at;
              const T* __restrict ar = pa + at;
              T* __restrict dgr = WantG ? odg + at : nullptr;
              T* __restrict dxr = WantX ? odx + at : nullptr;
              for (Index i = 0; i < s; ++i) {
                const T xhat = (xr[i] - c_mu) * c_inv;
                const T pai = (ar[i] - c_ma) - xhat * c_maxh;
                if constexpr (WantG) dgr[i] = c_gs * pai;
                if constexpr (WantX) {
                  const T pgi = (gr[i] - c_mg) - xhat * c_mgx;
                  dxr[i] = c_xs * (xhat * c_mapg + c_mgx * pai + c_maxh * pgi);
                }
              }
            }
          };
          for_wanted_outputs(rows, dg, dx);
        });
        return std::vector<Tensor<T>>{dx, dg, dw};
      });
  return gx;
}

/// Batch norm's weight gradient sum g * xhat ([C]) as a recorded op of (x, g); its
/// backward for an upstream b [C] is d g = b * xhat, d x = b * inv * P g (one fused
/// pass per channel, or differentiable ops when recorded).
/// `values` and `sums`, when given, are gw's values and the channel sums of (x, g)
/// already computed by batch_norm_backward_values; P g is then formed without another
/// pass for its sums.
template <class T>
Tensor<T> batch_norm_weight_grad(const std::shared_ptr<const BatchNormStats<T>>& st,
                                 const Tensor<T>& x, const Tensor<T>& g,
                                 const Tensor<T>& values = Tensor<T>(),
                                 std::shared_ptr<const ChannelGradSums> sums = nullptr) {
  Tensor<T> gw = values;
  if (!gw.defined() || sums == nullptr) {
    auto computed = std::make_shared<ChannelGradSums>();
    batch_norm_backward_values(*st, x, g, Tensor<T>(), nullptr, &gw, nullptr, computed.get());
    sums = std::move(computed);
  }
  metalearn::detail::record(
      gw, "batch_norm_weight_grad", {&x, &g}, [st, x, g, sums](Node<T>& self, const Tensor<T>& bw) {
        const bool want_x = self.needs_input_grad(0);
        const bool want_g = self.needs_input_grad(1);
        if (autograd::is_grad_enabled()) {
          const BatchNormTerms<T> t(x, st->eps);
          const Tensor<T> b = t.channel(bw);
          Tensor<T> dx, dg;
          if (want_g) dg = mul(b, t.xhat);
          if (want_x) dx = mul(mul(b, t.inv), t.project(g));
          return std::vector<Tensor<T>>{dx, dg};
        }
        Tensor<T> dx = want_x ? Tensor<T>::empty(x.shape()) : Tensor<T>();
        Tensor<T> dg = want_g ? Tensor<T>::empty(x.shape()) : Tensor<T>();
        const T* px = x.data();
        const T* pg = g.data();
        st->for_channels([&](Index ch) {
          const double inv = st->inv(ch);
          const double sg = sums->g[static_cast<std::size_t>(ch)];
          const double sgx = sums->gx[static_cast<std::size_t>(ch)];
          const double m = st->count();
          const T mu = st->mean[static_cast<std::size_t>(ch)];
          const T tinv = static_cast<T>(inv);
          const T bc = bw.data()[ch];
          const T tmg = static_cast<T>(sg / m), tmgx = static_cast<T>(sgx * inv / m);
          const T xs = static_cast<T>(static_cast<double>(bc) * inv);
          // As in batch_norm_input_grad: one loop per pair of wanted outputs, with
          // restrict-qualified pointers and local coefficients.
          const auto rows = [&]<bool WantG, bool WantX>(T* odg, T* odx) {
            const T c_mu = mu, c_inv = tinv, c_b = bc, c_xs = xs, c_mg = tmg, c_mgx = tmgx;
            const Index s = st->s;
            for (Index b = 0; b < st->n; ++b) {
              const Index at = st->row(b, ch);
              const T* __restrict xr = px + at;
              const T* __restrict gr = pg + at;
              T* __restrict dgr = WantG ? odg + at : nullptr;
              T* __restrict dxr = WantX ? odx + at : nullptr;
              for (Index i = 0; i < s; ++i) {
                const T xhat = (xr[i] - c_mu) * c_inv;
                if constexpr (WantG) dgr[i] = c_b * xhat;
                if constexpr (WantX) dxr[i] = c_xs * ((gr[i] - c_mg) - xhat * c_mgx);
              }
            }
          };
          for_wanted_outputs(rows, dg, dx);
        });
        return std::vector<Tensor<T>>{dx, dg};
      });
  return gw;
}

/// Batch norm's bias gradient sum g ([C], over all but dimension 1 of g) as a recorded
/// op of g, with its `values` already computed (batch_norm_backward_values sums g in
/// double). Its backward spreads an upstream b [C] over g's shape.
template <class T>
Tensor<T> batch_norm_bias_grad(const Tensor<T>& g, const Tensor<T>& values) {
  Tensor<T> gb = values;
  metalearn::detail::record(gb, "batch_norm_bias_grad", {&g},
                            [shape = g.shape()](Node<T>&, const Tensor<T>& b) {
                              std::vector<Index> channel(static_cast<std::size_t>(shape.dim()), 1);
                              channel[1] = shape[1];
                              return std::vector<Tensor<T>>{expand(reshape(b, channel), shape)};
                            });
  return gb;
}

/// The per-channel batch mean and biased variance of x [N, C, ...] (sums in double),
/// with the layout the backward passes use.
template <class T>
std::shared_ptr<const BatchNormStats<T>> batch_norm_stats(const Tensor<T>& x, T eps) {
  auto st = std::make_shared<BatchNormStats<T>>();
  st->n = x.shape()[0];
  st->c = x.shape()[1];
  st->s = x.numel() / std::max<Index>(1, st->n * st->c);
  st->eps = eps;
  st->mean.assign(static_cast<std::size_t>(st->c), T(0));
  st->var.assign(static_cast<std::size_t>(st->c), T(0));
  const T* px = x.data();
  st->for_channels([&](Index ch) {
    double acc = 0.0;
    for (Index b = 0; b < st->n; ++b)
      acc += metalearn::detail::sum_contiguous<double>(px + st->row(b, ch), st->s);
    const T mu = static_cast<T>(acc / st->count());
    const double sq =
        metalearn::detail::bn_square_sum(px + st->row(0, ch), st->n, st->c * st->s, st->s, mu);
    st->mean[static_cast<std::size_t>(ch)] = mu;
    st->var[static_cast<std::size_t>(ch)] = static_cast<T>(sq / st->count());
  });
  return st;
}

/// Training-mode batch norm in two passes over x, with the batch mean and biased
/// variance of each channel written to `mean_out` / `var_out` ([C]). Its backward
/// runs a fused kernel when no graph is being recorded (two passes over x and the
/// gradient, with the forward's statistics); under create_graph it records the
/// input- and weight-gradient ops above, whose own backward is fused as well, so
/// every order of derivative stays exact.
template <class T>
Tensor<T> batch_norm_batch_stats(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                                 T eps, std::vector<T>& mean_out, std::vector<T>& var_out) {
  const std::shared_ptr<const BatchNormStats<T>> st = batch_norm_stats(x, eps);
  Tensor<T> y = Tensor<T>::empty(x.shape());
  const T* px = x.data();
  T* py = y.data();
  // Channels are independent: under an IntraOpScope they spread over its pool, each
  // computed exactly as on one thread.
  st->for_channels([&](Index ch) {
    const T mu = st->mean[static_cast<std::size_t>(ch)];
    const T inv = T(1) / std::sqrt(st->var[static_cast<std::size_t>(ch)] + eps);
    const T gamma = weight.defined() ? weight.data()[ch] : T(1);
    const T beta = bias.defined() ? bias.data()[ch] : T(0);
    const T scale = gamma * inv;
    // (x - mu) first: x*scale + (beta - mu*scale) would cancel when the mean is large
    // against the spread (a convolution of mostly-blank images).
    const Index s = st->s;
    for (Index b = 0; b < st->n; ++b) {
      const T* __restrict row = px + st->row(b, ch);
      T* __restrict out = py + st->row(b, ch);
      for (Index i = 0; i < s; ++i) out[i] = (row[i] - mu) * scale + beta;
    }
  });
  mean_out = st->mean;
  var_out = st->var;
  metalearn::detail::record(
      y, "batch_norm", {&x, &weight, &bias}, [x, weight, st](Node<T>& self, const Tensor<T>& g) {
        const bool want_x = self.needs_input_grad(0);
        const bool want_w = self.needs_input_grad(1);
        const bool want_b = self.needs_input_grad(2);
        if (autograd::is_grad_enabled()) {
          // create_graph: the gradients as recorded ops, differentiable again.
          // One pass computes the values of all three and the channel sums the weight
          // gradient's own backward reads; the ops record them.
          Tensor<T> vx, vw, vb;
          auto sums = std::make_shared<ChannelGradSums>();
          batch_norm_backward_values(*st, x, g, weight, want_x ? &vx : nullptr,
                                     want_w ? &vw : nullptr, want_b ? &vb : nullptr, sums.get());
          Tensor<T> gx, gw, gb;
          if (want_x) gx = batch_norm_input_grad(st, x, g, weight, vx);
          if (want_w) gw = batch_norm_weight_grad(st, x, g, vw, std::move(sums));
          if (want_b) gb = batch_norm_bias_grad(g, vb);
          return std::vector<Tensor<T>>{gx, gw, gb};
        }
        Tensor<T> gx, gw, gb;
        batch_norm_backward_values(*st, x, g, weight, want_x ? &gx : nullptr,
                                   want_w ? &gw : nullptr, want_b ? &gb : nullptr);
        return std::vector<Tensor<T>>{gx, gw, gb};
      });
  return y;
}

}  // namespace detail

/// Batch normalisation over the channel dimension 1 of x [N, C], [N, C, L] or
/// [N, C, H, W].
///
/// With `training` the batch statistics normalise x (biased variance) and, when
/// running_mean / running_var [C] are defined, they are updated in place:
/// r <- (1 - momentum) r + momentum * batch_stat, with the unbiased variance.
/// Without `training` the running statistics normalise x (they must be defined).
/// weight and bias [C] are optional (undefined: no affine transform).
///
/// Built from differentiable tensor ops: it supports gradients of any order with
/// respect to x, weight and bias. The running statistics are constants.
template <class T>
Tensor<T> batch_norm(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                     const Tensor<T>& running_mean, const Tensor<T>& running_var, bool training,
                     T momentum = T(0.1), T eps = T(1e-5)) {
  METALEARN_CHECK(x.dim() >= 2 && x.dim() <= 4, ShapeError,
                  "batch_norm: expected input [N, C], [N, C, L] or [N, C, H, W], got ", x.shape());
  const Index c = x.shape()[1];
  std::vector<Index> bshape(static_cast<std::size_t>(x.dim()), 1);
  bshape[1] = c;
  auto check_c = [&](const Tensor<T>& t, const char* what) {
    METALEARN_CHECK(!t.defined() || (t.dim() == 1 && t.shape()[0] == c), ShapeError,
                    "batch_norm: ", what, " has shape ", t.shape(), " but the input ", x.shape(),
                    " has ", c, " channels");
  };
  check_c(weight, "weight");
  check_c(bias, "bias");
  check_c(running_mean, "running_mean");
  check_c(running_var, "running_var");
  METALEARN_CHECK(running_mean.defined() == running_var.defined(), ValueError,
                  "batch_norm: pass both running_mean and running_var or neither");
  Tensor<T> y;
  if (training) {
    const Index n = x.numel() / c;
    METALEARN_CHECK(n > 1 || !running_var.defined(), ValueError,
                    "batch_norm: training needs more than one value per channel, got input ",
                    x.shape());
    std::vector<T> mu;
    std::vector<T> var;
    y = detail::batch_norm_batch_stats(x, weight, bias, eps, mu, var);
    if (running_mean.defined()) {
      const T unbias = static_cast<T>(n) / static_cast<T>(n - 1);
      T* rm = running_mean.data();
      T* rv = running_var.data();
      for (Index i = 0; i < c; ++i) {
        rm[i] = (T(1) - momentum) * rm[i] + momentum * mu[static_cast<std::size_t>(i)];
        rv[i] = (T(1) - momentum) * rv[i] + momentum * unbias * var[static_cast<std::size_t>(i)];
      }
      running_mean.bump_version();
      running_var.bump_version();
    }
    return y;
  } else {
    METALEARN_CHECK(running_mean.defined(), ValueError,
                    "batch_norm: evaluation (training = false) needs running statistics");
    Tensor<T> rm = reshape(running_mean.detach(), bshape);
    Tensor<T> rv = reshape(running_var.detach(), bshape);
    y = div(sub(x, rm), sqrt(add_scalar(rv, eps)));
  }
  if (weight.defined()) y = mul(y, reshape(weight, bshape));
  if (bias.defined()) y = add(y, reshape(bias, bshape));
  return y;
}

}  // namespace metalearn
