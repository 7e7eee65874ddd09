#pragma once
/// @file
/// Differentiable pairwise distances: squared Euclidean and cosine similarity, and the
/// similarity logits that metric-based meta-learners (Prototypical Networks, Matching
/// Networks) build on them.

#include "metalearn/tensor/ops/elementwise.hpp"
#include "metalearn/tensor/ops/linalg.hpp"
#include "metalearn/tensor/ops/reduction.hpp"
#include "metalearn/tensor/ops/shape_ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn {

namespace detail {
template <class T>
void check_pairwise(const Tensor<T>& x, const Tensor<T>& y, const char* op) {
  METALEARN_CHECK(x.dim() == 2 && y.dim() == 2 && x.shape()[1] == y.shape()[1], ShapeError, op,
                  ": expected [N, D] and [M, D], got ", x.shape(), " and ", y.shape());
}
}  // namespace detail

/// out[i, j] = ||x_i - y_j||^2 for x [N, D] and y [M, D].
template <class T>
Tensor<T> pairwise_sq_dist(const Tensor<T>& x, const Tensor<T>& y) {
  detail::check_pairwise(x, y, "pairwise_sq_dist");
  Tensor<T> xx = sum(square(x), 1, true);                                          // [N, 1]
  Tensor<T> yy = reshape(sum(square(y), 1), std::vector<Index>{1, y.shape()[0]});  // [1, M]
  return sub(add(xx, yy), mul_scalar(mm(x, y, false, true), T(2)));
}

/// out[i, j] = <x_i, y_j> / (max(||x_i||, eps) * max(||y_j||, eps)).
template <class T>
Tensor<T> cosine_similarity(const Tensor<T>& x, const Tensor<T>& y, T eps = T(1e-8)) {
  detail::check_pairwise(x, y, "cosine_similarity");
  auto normalize = [eps](const Tensor<T>& a) {
    Tensor<T> n = sqrt(clamp(sum(square(a), 1, true), eps * eps, std::numeric_limits<T>::max()));
    return div(a, n);
  };
  return mm(normalize(x), normalize(y), false, true);
}

/// How two embeddings are compared.
enum class Distance {
  kSquaredEuclidean,  ///< ||a - b||^2
  kCosine,            ///< 1 - cos(a, b)
};

/// Similarity logits [N, M] = -scale * d(x_i, y_j) for x [N, D] and y [M, D]: the
/// softmax of row i is the attention of x_i over the y_j. For the cosine this is
/// scale * (cos(x_i, y_j) - 1), whose softmax is that of scale * cos(x_i, y_j).
template <class T>
Tensor<T> similarity_logits(const Tensor<T>& x, const Tensor<T>& y, Distance distance,
                            T scale = T(1)) {
  if (distance == Distance::kCosine) {
    return mul_scalar(add_scalar(cosine_similarity(x, y), T(-1)), scale);
  }
  return mul_scalar(pairwise_sq_dist(x, y), -scale);
}

}  // namespace metalearn
