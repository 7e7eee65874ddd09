#pragma once
/// @file
/// Non-learned regressors from a task's context to its targets, the baselines a Neural
/// Process is measured against on image completion: k-nearest-neighbour averaging and
/// the posterior mean of a Gaussian process with an EQ kernel.
// SPDX-License-Identifier: MIT

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <utility>
#include <vector>

#include "metalearn/core/eigen.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::algorithms {

namespace detail {

template <class T>
void check_regression_task(const data::Task<T>& task, const char* function) {
  const auto& sx = task.support_x;
  const auto& sy = task.support_y;
  const auto& qx = task.query_x;
  METALEARN_CHECK(sx.defined() && sy.defined() && qx.defined() && sx.dim() == 2 && sy.dim() == 2 &&
                      qx.dim() == 2 && sx.shape()[0] == sy.shape()[0] &&
                      sx.shape()[1] == qx.shape()[1],
                  ShapeError, function, ": context inputs ", sx.defined() ? sx.shape() : Shape{},
                  ", context targets ", sy.defined() ? sy.shape() : Shape{}, " and target inputs ",
                  qx.defined() ? qx.shape() : Shape{}, "; expected [n, d], [n, e] and [m, d]");
  METALEARN_CHECK(sx.shape()[0] >= 1, ShapeError, function, ": the task has no context points");
}

template <class T>
double squared_distance(const T* a, const T* b, Index d) {
  double s = 0.0;
  for (Index k = 0; k < d; ++k) {
    const double v = static_cast<double>(a[k]) - static_cast<double>(b[k]);
    s += v * v;
  }
  return s;
}

}  // namespace detail

/// k-nearest-neighbour regression: the prediction at each target input (a row of
/// task.query_x) is the mean of the targets of the `k` context points nearest to it
/// (Euclidean distance; ties go to the earlier context point); k is capped at the
/// context size. Returns [m, e].
/// @throws ValueError when k < 1; ShapeError for sets that are not [n, d] / [n, e] /
/// [m, d] or an empty context.
template <class T>
[[nodiscard]] Tensor<T> knn_regression(const data::Task<T>& task, Index k) {
  const char* f = "algorithms::knn_regression";
  METALEARN_CHECK(k >= 1, ValueError, f, ": k must be >= 1, got ", k);
  detail::check_regression_task(task, f);
  const Index n = task.support_x.shape()[0];
  const Index d = task.support_x.shape()[1];
  const Index e = task.support_y.shape()[1];
  const Index m = task.query_x.shape()[0];
  const Index kk = std::min(k, n);
  Tensor<T> out = Tensor<T>::empty(Shape{m, e});
  std::vector<std::pair<double, Index>> dist(static_cast<std::size_t>(n));
  for (Index q = 0; q < m; ++q) {
    const T* x = task.query_x.data() + q * d;
    for (Index i = 0; i < n; ++i) {
      dist[static_cast<std::size_t>(i)] = {
          detail::squared_distance(x, task.support_x.data() + i * d, d), i};
    }
    std::partial_sort(dist.begin(), dist.begin() + kk, dist.end());
    for (Index c = 0; c < e; ++c) {
      double sum = 0.0;
      for (Index j = 0; j < kk; ++j) {
        sum += static_cast<double>(
            task.support_y.data()[dist[static_cast<std::size_t>(j)].second * e + c]);
      }
      out.data()[q * e + c] = static_cast<T>(sum / static_cast<double>(kk));
    }
  }
  return out;
}

/// The posterior mean of a zero-mean Gaussian process with the EQ kernel
/// s^2 exp(-|x - x'|^2 / (2 l^2)) and observation noise of standard deviation
/// `noise_std`, given the context, at each target input; computed in double (Eigen's
/// Cholesky factorisation). Returns [m, e] (each target column regressed alike).
/// @throws ValueError for a non-positive length or signal scale or a negative noise, or a
/// kernel matrix that is not positive definite; ShapeError as knn_regression().
template <class T>
[[nodiscard]] Tensor<T> gp_regression_mean(const data::Task<T>& task, double length_scale,
                                           double signal_scale, double noise_std) {
  const char* f = "algorithms::gp_regression_mean";
  METALEARN_CHECK(length_scale > 0.0 && signal_scale > 0.0 && noise_std >= 0.0, ValueError, f,
                  ": need length_scale > 0, signal_scale > 0 and noise_std >= 0, got ",
                  length_scale, ", ", signal_scale, " and ", noise_std);
  detail::check_regression_task(task, f);
  const Index n = task.support_x.shape()[0];
  const Index d = task.support_x.shape()[1];
  const Index e = task.support_y.shape()[1];
  const Index m = task.query_x.shape()[0];
  const double s2 = signal_scale * signal_scale;
  const double inv = 1.0 / (2.0 * length_scale * length_scale);
  const auto kernel = [&](const T* a, const T* b) {
    return s2 * std::exp(-detail::squared_distance(a, b, d) * inv);
  };
  Eigen::MatrixXd kc(n, n);
  for (Index i = 0; i < n; ++i) {
    for (Index j = 0; j <= i; ++j) {
      kc(i, j) = kc(j, i) = kernel(task.support_x.data() + i * d, task.support_x.data() + j * d);
    }
  }
  kc.diagonal().array() += noise_std * noise_std + 1e-9 * s2;
  const Eigen::LLT<Eigen::MatrixXd> llt(kc);
  METALEARN_CHECK(llt.info() == Eigen::Success, ValueError, f, ": the ", n, "x", n,
                  " context kernel matrix is not positive definite");
  Eigen::MatrixXd y(n, e);
  for (Index i = 0; i < n; ++i) {
    for (Index c = 0; c < e; ++c) y(i, c) = static_cast<double>(task.support_y.data()[i * e + c]);
  }
  const Eigen::MatrixXd alpha = llt.solve(y);
  Tensor<T> out = Tensor<T>::empty(Shape{m, e});
  Eigen::RowVectorXd ks(n);
  for (Index q = 0; q < m; ++q) {
    for (Index i = 0; i < n; ++i) {
      ks[i] = kernel(task.query_x.data() + q * d, task.support_x.data() + i * d);
    }
    for (Index c = 0; c < e; ++c) out.data()[q * e + c] = static_cast<T>(ks.dot(alpha.col(c)));
  }
  return out;
}

/// The mean squared error of `prediction` ([m, e]) against task.query_y, over all its
/// values. @throws ShapeError when the shapes differ.
template <class T>
[[nodiscard]] double mean_squared_error(const data::Task<T>& task, const Tensor<T>& prediction) {
  METALEARN_CHECK(task.query_y.defined() && prediction.defined() &&
                      task.query_y.shape() == prediction.shape() && prediction.numel() > 0,
                  ShapeError, "algorithms::mean_squared_error: prediction ",
                  prediction.defined() ? prediction.shape() : Shape{}, " against targets ",
                  task.query_y.defined() ? task.query_y.shape() : Shape{});
  double s = 0.0;
  for (Index i = 0; i < prediction.numel(); ++i) {
    const double r =
        static_cast<double>(prediction.data()[i]) - static_cast<double>(task.query_y.data()[i]);
    s += r * r;
  }
  return s / static_cast<double>(prediction.numel());
}

}  // namespace metalearn::algorithms
