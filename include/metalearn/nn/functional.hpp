#pragma once
// Stateless functional twins of the layers: each takes its parameters as tensors.
// Every function is built from differentiable tensor ops, so it supports second
// order (create_graph) like the ops themselves.
// SPDX-License-Identifier: MIT

#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/core/thread_pool.hpp"
#include "metalearn/tensor/detail/kernels.hpp"
#include "metalearn/tensor/grad_mode.hpp"
#include "metalearn/tensor/ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::nn::functional {

/// y = x W^T + b for x [..., in], weight [out, in], bias [out] (undefined: none).
template <class T>
Tensor<T> linear(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = Tensor<T>()) {
  METALEARN_CHECK(weight.dim() == 2 && x.dim() >= 1 && x.shape()[x.dim() - 1] == weight.shape()[1],
                  ShapeError, "linear: input ", x.shape(), " does not fit weight ", weight.shape(),
                  " (expected [..., ", weight.dim() == 2 ? weight.shape()[1] : -1, "])");
  Tensor<T> y;
  if (x.dim() == 2) {
    y = mm(x, weight, false, true);
  } else {
    std::vector<Index> lead = x.shape().dims();
    lead.pop_back();
    y = mm(reshape(x, std::vector<Index>{-1, x.shape()[x.dim() - 1]}), weight, false, true);
    lead.push_back(weight.shape()[0]);
    y = reshape(y, std::move(lead));
  }
  if (bias.defined()) {
    METALEARN_CHECK(bias.dim() == 1 && bias.shape()[0] == weight.shape()[0], ShapeError,
                    "linear: bias ", bias.shape(), " does not match weight ", weight.shape());
    y = add(y, bias);
  }
  return y;
}

/// 2-D convolution of x [N, C, H, W] with weight [O, C, kh, kw] and bias [O].
template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = Tensor<T>(),
                 Index stride = 1, Index padding = 0) {
  return metalearn::conv2d(x, weight, bias, stride, padding);
}

/// Max pooling of x [N, C, H, W] with a square window (stride 0: the window).
template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, Index kernel, Index stride = 0) {
  return metalearn::max_pool2d(x, kernel, stride);
}

template <class T>
Tensor<T> relu(const Tensor<T>& x) {
  return metalearn::relu(x);
}
template <class T>
Tensor<T> tanh(const Tensor<T>& x) {
  return metalearn::tanh(x);
}
template <class T>
Tensor<T> sigmoid(const Tensor<T>& x) {
  return metalearn::sigmoid(x);
}
template <class T>
Tensor<T> leaky_relu(const Tensor<T>& x, T negative_slope = T(0.01)) {
  return metalearn::leaky_relu(x, negative_slope);
}

/// Collapses dimensions [start, end] (default: all but the batch dimension).
template <class T>
Tensor<T> flatten(const Tensor<T>& x, Index start = 1, Index end = -1) {
  return metalearn::flatten(x, start, end);
}

namespace detail {

/// Sum of (x[i] - mu)^2 over a row, with eight partial sums in double.
template <class T>
double centered_square_sum(const T* x, Index s, T mu) {
  double acc[8] = {};
  Index i = 0;
  for (; i + 8 <= s; i += 8) {
    for (int k = 0; k < 8; ++k) {
      const double d = static_cast<double>(x[i + k] - mu);
      acc[k] += d * d;
    }
  }
  double total = 0.0;
  for (; i < s; ++i) {
    const double d = static_cast<double>(x[i] - mu);
    total += d * d;
  }
  for (const double a : acc) total += a;
  return total;
}

/// The two sums of batch norm's backward over a row, sum g and sum g*(x-mu), with
/// eight partial sums each, in double: they nearly cancel over the batch (the
/// gradient behind a normalisation has little mean), so float partial sums would
/// lose their leading digits.
template <class T>
void backward_row_sums(const T* x, const T* g, Index s, T mu, double& sg, double& sgx) {
  double ag[8] = {}, agx[8] = {};
  Index i = 0;
  for (; i + 8 <= s; i += 8) {
    for (int k = 0; k < 8; ++k) {
      const double d = static_cast<double>(x[i + k] - mu);
      const double gk = static_cast<double>(g[i + k]);
      ag[k] += gk;
      agx[k] += gk * d;
    }
  }
  for (; i < s; ++i) {
    const double d = static_cast<double>(x[i] - mu);
    sg += static_cast<double>(g[i]);
    sgx += static_cast<double>(g[i]) * d;
  }
  for (int k = 0; k < 8; ++k) {
    sg += ag[k];
    sgx += agx[k];
  }
}

/// Training-mode batch norm in two passes over x, with the batch mean and biased
/// variance of each channel written to `mean_out` / `var_out` ([C]). Its backward
/// runs a fused kernel when no graph is being recorded (two passes over x and the
/// gradient, with the forward's statistics), and the equivalent differentiable
/// formula when it is (create_graph), so every order of derivative stays exact.
template <class T>
Tensor<T> batch_norm_batch_stats(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                                 T eps, std::vector<T>& mean_out, std::vector<T>& var_out) {
  const Index n = x.shape()[0];
  const Index c = x.shape()[1];
  const Index s = x.numel() / std::max<Index>(1, n * c);
  const Index count = n * s;
  Tensor<T> y = Tensor<T>::empty(x.shape());
  mean_out.assign(static_cast<std::size_t>(c), T(0));
  var_out.assign(static_cast<std::size_t>(c), T(0));
  const T* px = x.data();
  T* py = y.data();
  // Channels are independent: under an IntraOpScope they spread over its pool, each
  // computed exactly as on one thread.
  parallel_for_large(static_cast<std::size_t>(c), static_cast<std::size_t>(x.numel()),
                     [&](std::size_t chan) {
                       const auto ch = static_cast<Index>(chan);
                       double acc = 0.0;
                       for (Index b = 0; b < n; ++b) {
                         acc += metalearn::detail::sum_contiguous<double>(px + (b * c + ch) * s, s);
                       }
                       const T mu = static_cast<T>(acc / static_cast<double>(count));
                       double sq = 0.0;
                       for (Index b = 0; b < n; ++b)
                         sq += centered_square_sum(px + (b * c + ch) * s, s, mu);
                       const T var = static_cast<T>(sq / static_cast<double>(count));
                       const T inv = T(1) / std::sqrt(var + eps);
                       const T gamma = weight.defined() ? weight.data()[ch] : T(1);
                       const T beta = bias.defined() ? bias.data()[ch] : T(0);
                       const T scale = gamma * inv;
                       // (x - mu) first: x*scale + (beta - mu*scale) would cancel when the mean is
                       // large against the spread (a convolution of mostly-blank images).
                       for (Index b = 0; b < n; ++b) {
                         const T* row = px + (b * c + ch) * s;
                         T* out = py + (b * c + ch) * s;
                         for (Index i = 0; i < s; ++i) out[i] = (row[i] - mu) * scale + beta;
                       }
                       mean_out[chan] = mu;
                       var_out[chan] = var;
                     });
  metalearn::detail::record(
      y, "batch_norm", {&x, &weight, &bias},
      [x, weight, eps, n, c, s, saved_mean = mean_out, saved_var = var_out](Node<T>& self,
                                                                            const Tensor<T>& g) {
        std::vector<Index> bshape(static_cast<std::size_t>(x.dim()), 1);
        bshape[1] = c;
        std::vector<Index> dims{0};
        for (Index d = 2; d < x.dim(); ++d) dims.push_back(d);
        if (autograd::is_grad_enabled()) {
          // create_graph: the same gradients as differentiable ops.
          Tensor<T> xc = sub(x, mean(x, dims, true));
          Tensor<T> inv =
              reciprocal(metalearn::sqrt(add_scalar(mean(square(xc), dims, true), eps)));
          Tensor<T> xhat = mul(xc, inv);
          Tensor<T> gx, gw, gb;
          if (self.needs_input_grad(0)) {
            Tensor<T> scale = weight.defined() ? mul(inv, reshape(weight, bshape)) : inv;
            Tensor<T> inner =
                sub(sub(g, mean(g, dims, true)), mul(xhat, mean(mul(g, xhat), dims, true)));
            gx = mul(scale, inner);
          }
          if (self.needs_input_grad(1))
            gw = reshape(sum(mul(g, xhat), dims), std::vector<Index>{c});
          if (self.needs_input_grad(2)) gb = reshape(sum(g, dims), std::vector<Index>{c});
          return std::vector<Tensor<T>>{gx, gw, gb};
        }
        // No graph: per channel, one pass for the sums of g and one for dx.
        Tensor<T> gx = Tensor<T>::empty(x.shape());
        Tensor<T> gw = Tensor<T>::empty(Shape{c});
        Tensor<T> gb = Tensor<T>::empty(Shape{c});
        const T* px = x.data();
        const T* pg = g.data();
        T* pgx = gx.data();
        const double count = static_cast<double>(n * s);
        parallel_for_large(
            static_cast<std::size_t>(c), static_cast<std::size_t>(x.numel()),
            [&](std::size_t chan) {
              const auto ch = static_cast<Index>(chan);
              const T mu = saved_mean[chan];
              double sg = 0.0, sgx = 0.0;
              for (Index b = 0; b < n; ++b) {
                const Index at = (b * c + ch) * s;
                backward_row_sums(px + at, pg + at, s, mu, sg, sgx);
              }
              const double inv =
                  1.0 / std::sqrt(static_cast<double>(saved_var[chan]) + static_cast<double>(eps));
              const double gamma = weight.defined() ? static_cast<double>(weight.data()[ch]) : 1.0;
              const double mean_g = sg / count;
              const double mean_gxhat = sgx * inv / count;
              gw.data()[ch] = static_cast<T>(sgx * inv);
              gb.data()[ch] = static_cast<T>(sg);
              for (Index b = 0; b < n; ++b) {
                const T* row = px + (b * c + ch) * s;
                const T* grow = pg + (b * c + ch) * s;
                T* out = pgx + (b * c + ch) * s;
                // dx = gamma*inv*((g - mean_g) - (x - mu)*inv*mean_gxhat), the two
                // differences formed first: scaling before subtracting would cancel
                // when a mean is large against the spread (common behind a ReLU).
                const T a = static_cast<T>(gamma * inv);
                const T k = static_cast<T>(inv * mean_gxhat);
                const T mg = static_cast<T>(mean_g);
                for (Index i = 0; i < s; ++i) out[i] = a * ((grow[i] - mg) - k * (row[i] - mu));
              }
            });
        return std::vector<Tensor<T>>{self.needs_input_grad(0) ? gx : Tensor<T>(),
                                      self.needs_input_grad(1) ? gw : Tensor<T>(),
                                      self.needs_input_grad(2) ? gb : Tensor<T>()};
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
  std::vector<Index> dims{0};
  for (Index d = 2; d < x.dim(); ++d) dims.push_back(d);
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

/// One GRU step (PyTorch's gate layout): x [N, I], h [N, H], weight_ih [3H, I],
/// weight_hh [3H, H], biases [3H] (optional). Gates r, z, n in that order:
/// r = s(W_ir x + b_ir + W_hr h + b_hr), z likewise, n = tanh(W_in x + b_in +
/// r (W_hn h + b_hn)), h' = (1 - z) n + z h.
template <class T>
Tensor<T> gru_cell(const Tensor<T>& x, const Tensor<T>& h, const Tensor<T>& weight_ih,
                   const Tensor<T>& weight_hh, const Tensor<T>& bias_ih = Tensor<T>(),
                   const Tensor<T>& bias_hh = Tensor<T>()) {
  METALEARN_CHECK(
      h.dim() == 2 && weight_hh.dim() == 2 && weight_hh.shape()[0] == 3 * h.shape()[1] &&
          weight_hh.shape()[1] == h.shape()[1] && x.dim() == 2 && x.shape()[0] == h.shape()[0],
      ShapeError, "gru_cell: hidden state ", h.shape(), ", input ", x.shape(), " and weight_hh ",
      weight_hh.shape(), " do not fit together");
  const Index hs = h.shape()[1];
  Tensor<T> gi = linear(x, weight_ih, bias_ih);  // [N, 3H]
  Tensor<T> gh = linear(h, weight_hh, bias_hh);  // [N, 3H]
  Tensor<T> r = metalearn::sigmoid(add(slice(gi, 1, 0, hs), slice(gh, 1, 0, hs)));
  Tensor<T> z = metalearn::sigmoid(add(slice(gi, 1, hs, 2 * hs), slice(gh, 1, hs, 2 * hs)));
  Tensor<T> n =
      metalearn::tanh(add(slice(gi, 1, 2 * hs, 3 * hs), mul(r, slice(gh, 1, 2 * hs, 3 * hs))));
  return add(n, mul(z, sub(h, n)));  // (1 - z) n + z h
}

}  // namespace metalearn::nn::functional
