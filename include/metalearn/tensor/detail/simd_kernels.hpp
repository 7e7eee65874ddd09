#pragma once
// The loops of conv2d, max_pool2d, batch norm, Adam and the recurrent cells that run over
// every element: im2col, col2im, channel gathers, window maxima, the max-pool backward
// scatter, batch norm's per-channel sums, square roots, float sigmoid and tanh, and the
// GRU gates. They are compiled into the library once per instruction set
// (src/tensor/simd_kernels.cpp) and the best one the CPU has is chosen at run time (see
// metalearn/core/simd.hpp); this header declares them. Every target gives the same
// bits: these loops copy, compare, and add or multiply one term at a time in a fixed
// order, with no multiply-add fused.

#include <cmath>
#include <cstdint>

#include "metalearn/core/export.hpp"
#include "metalearn/core/shape.hpp"

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

/// im2col of `nb` images starting at x [nb, C, H, W]: cols [C*kh*kw, nb*L], column
/// b*L + q. Row (c, i, j) holds, for every output position, the input at kernel offset
/// (i, j) of channel c (zero where the window reaches into the padding).
METALEARN_API void im2col(const float* x, const Conv2dGeometry& g, Index nb, float* cols);
METALEARN_API void im2col(const double* x, const Conv2dGeometry& g, Index nb, double* cols);

/// col2im, the adjoint of im2col: adds cols [C*kh*kw, nb*L] into the `nb` images at x.
/// Every pixel receives its terms in the order of the im2col rows (one term per row
/// at most); terms that fall on the padding are dropped.
METALEARN_API void col2im_add(const float* cols, const Conv2dGeometry& g, Index nb, float* x);
METALEARN_API void col2im_add(const double* cols, const Conv2dGeometry& g, Index nb, double* x);

/// Copies the `nb` images of y [nb, O, L] into m [O, nb*L] (column b*L + q).
METALEARN_API void gather_channels(const float* y, Index o, Index l, Index nb, float* m);
METALEARN_API void gather_channels(const double* y, Index o, Index l, Index nb, double* m);

/// One plane (rows of w) of max_pool2d with a k x k window at stride s: for each of the
/// oh x ow windows, the first maximal element's code i * k + j (row i, column j of the
/// window; strictly greater wins, so ties and NaNs keep the earlier element) and its
/// value.
METALEARN_API void pool_plane(const float* p, Index w, Index oh, Index ow, Index k, Index s,
                              std::uint8_t* code, float* values);
METALEARN_API void pool_plane(const double* p, Index w, Index oh, Index ow, Index k, Index s,
                              std::uint8_t* code, double* values);
METALEARN_API void pool_plane(const float* p, Index w, Index oh, Index ow, Index k, Index s,
                              Index* code, float* values);
METALEARN_API void pool_plane(const double* p, Index w, Index oh, Index ow, Index k, Index s,
                              Index* code, double* values);

/// The max_pool2d gradient of one [h, w] plane of 2x2 windows at stride 2, from the
/// window gradients g and codes in window order: every element of x written once (the
/// element a window chose gets its gradient, the other three +0, and the last row and
/// column that no window covers when h or w is odd are zeroed).
METALEARN_API void scatter_2x2_plane(const float* g, const std::uint8_t* code, Index h, Index w,
                                     Index oh, Index ow, float* x);
METALEARN_API void scatter_2x2_plane(const double* g, const std::uint8_t* code, Index h, Index w,
                                     Index oh, Index ow, double* x);
METALEARN_API void scatter_2x2_plane(const float* g, const Index* code, Index h, Index w, Index oh,
                                     Index ow, float* x);
METALEARN_API void scatter_2x2_plane(const double* g, const Index* code, Index h, Index w, Index oh,
                                     Index ow, double* x);

/// v[i] = sqrt(v[i]) for n values, correctly rounded as std::sqrt is (so the result
/// does not depend on the target).
METALEARN_API void sqrt_in_place(float* v, Index n);
METALEARN_API void sqrt_in_place(double* v, Index n);

/// Batch norm's per-channel sums over n rows of s values (row b at x + b * stride), in
/// double, each row summed in a fixed order (eight values at a time into two four-lane
/// accumulators, whose lanes are added in a fixed order, then the tail) and added to
/// the channel's total; no multiply-add is fused, so every target gives the same bits.
/// bn_square_sum: sum (x - mu)^2.
METALEARN_API double bn_square_sum(const float* x, Index n, Index stride, Index s, float mu);
METALEARN_API double bn_square_sum(const double* x, Index n, Index stride, Index s, double mu);
/// sums[0] = sum g, sums[1] = sum g * (x - mu) (the backward's two sums).
METALEARN_API void bn_backward_sums(const float* x, const float* g, Index n, Index stride, Index s,
                                    float mu, double* sums);
METALEARN_API void bn_backward_sums(const double* x, const double* g, Index n, Index stride,
                                    Index s, double mu, double* sums);
/// The second-order backward's five sums, four values at a time: sums[0..5) = sum g,
/// sum g * (x - mu), sum a, sum a * (x - mu), sum a * g.
METALEARN_API void bn_second_order_sums(const float* x, const float* g, const float* a, Index n,
                                        Index stride, Index s, float mu, double* sums);
METALEARN_API void bn_second_order_sums(const double* x, const double* g, const double* a, Index n,
                                        Index stride, Index s, double mu, double* sums);

/// The logistic function in double: 1 / (1 + exp(-x)) for x >= 0, exp(x) / (1 + exp(x))
/// below (no overflow either way). The double sigmoid and GRU gates use it.
inline double logistic(double x) {
  return x >= 0.0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x));
}
/// y[i] = sigmoid(x[i]), y[i] = tanh(x[i]) for n floats (x and y may be the same array):
/// within 2 ulp of the exact values (sigmoid's absolute error below 1e-45 where the
/// result is subnormal), the same bits on every target; NaN stays NaN.
METALEARN_API void sigmoid_values(const float* x, float* y, Index n);
METALEARN_API void tanh_values(const float* x, float* y, Index n);
/// The gate arithmetic of `rows` GRU steps of hs units, from the two products gi = W_ih x
/// + b_ih and gh = W_hh h + b_hh ([rows, 3 hs] each, gates r, z, n) and the hidden
/// state h [rows, hs]:
///   r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r gh_n),
///   out = n + z (h - n),
/// each a vector of the terms in that order (float: sigmoid_values and tanh_values;
/// double: logistic and std::tanh). When `saved` is not null it receives, per row,
/// [r | z | n | gh_n] ([rows, 4 hs]) for gru_gates_backward.
METALEARN_API void gru_gates_forward(const float* gi, const float* gh, const float* h, Index rows,
                                     Index hs, float* out, float* saved);
METALEARN_API void gru_gates_forward(const double* gi, const double* gh, const double* h,
                                     Index rows, Index hs, double* out, double* saved);
/// Its backward from the gradient a [rows, hs] of out, the hidden state h and `saved`:
///   dh = a z, d_pz = a (h - n) (z - z z), d_pn = (a - a z) (1 - n n),
///   d_pr = d_pn gh_n (r - r r),
///   dgi = [d_pr | d_pz | d_pn], dgh = [d_pr | d_pz | d_pn r],
/// each product in that order with one rounding per operation. Any output may be null.
METALEARN_API void gru_gates_backward(const float* a, const float* h, const float* saved,
                                      Index rows, Index hs, float* dgi, float* dgh, float* dh);
METALEARN_API void gru_gates_backward(const double* a, const double* h, const double* saved,
                                      Index rows, Index hs, double* dgi, double* dgh, double* dh);
}  // namespace detail
}  // namespace metalearn
