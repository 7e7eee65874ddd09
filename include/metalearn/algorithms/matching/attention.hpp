#pragma once
/// @file
/// The classification rule of Matching Networks (Vinyals et al., NeurIPS 2016): a
/// query's label distribution is the attention-weighted sum of the support labels,
///
/// @code{.unparsed}
///   p(y = k | x) = sum over the supports i of class k of a(x, x_i),
///   a(x, x_i)    = softmax over i of  -scale * d(f(x), g(x_i))
/// @endcode
///
/// with the cosine (the paper's choice) or the squared Euclidean distance between
/// the embeddings f(x) of the queries and g(x_i) of the supports.
// SPDX-License-Identifier: MIT

#include <cstddef>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/tensor/ops.hpp"
#include "metalearn/tensor/ops/distance.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::algorithms {

/// The attention a(x_q, x_i) [Q, S] of `query` embeddings [Q, D] over `support`
/// embeddings [S, D]: each row is a softmax over the supports.
template <class T>
Tensor<T> matching_attention(const Tensor<T>& query, const Tensor<T>& support,
                             Distance distance = Distance::kCosine, T scale = T(1)) {
  return softmax(similarity_logits(query, support, distance, scale), 1);
}

/// log p(y = k | x_q) [Q, ways] for `query` embeddings [Q, D] and `support`
/// embeddings [S, D] labelled 0..ways-1 by `labels`. Computed as the log-sum-exp of
/// the similarity logits of class k's supports minus that of all supports, so it
/// is exact for any scale (no probability is formed and then logged); it is
/// normalised, so cross_entropy() of it is the episode's negative log-likelihood.
/// @throws ShapeError on mismatched sizes, ValueError on a label outside [0, ways)
/// or a class without support examples.
template <class T>
Tensor<T> matching_log_probs(const Tensor<T>& query, const Tensor<T>& support, const Labels& labels,
                             Index ways, Distance distance = Distance::kCosine, T scale = T(1)) {
  METALEARN_CHECK(support.dim() == 2 && static_cast<Index>(labels.size()) == support.size(0),
                  ShapeError, "matching_log_probs: ", labels.size(),
                  " labels for support embeddings of shape ", support.shape());
  METALEARN_CHECK(ways >= 1, ValueError, "matching_log_probs: ways must be >= 1, got ", ways);
  std::vector<std::vector<Index>> members(static_cast<std::size_t>(ways));
  for (std::size_t i = 0; i < labels.size(); ++i) {
    METALEARN_CHECK(labels[i] >= 0 && labels[i] < ways, ValueError, "matching_log_probs: label ",
                    labels[i], " at position ", i, " is outside [0, ", ways, ")");
    members[static_cast<std::size_t>(labels[i])].push_back(static_cast<Index>(i));
  }
  bool equal = true;
  for (Index k = 0; k < ways; ++k) {
    const auto& m = members[static_cast<std::size_t>(k)];
    METALEARN_CHECK(!m.empty(), ValueError, "matching_log_probs: class ", k, " of ", ways,
                    " has no support example");
    equal = equal && m.size() == members[0].size();
  }
  const Tensor<T> logits = similarity_logits(query, support, distance, scale);  // [Q, S]
  const Index q = logits.size(0);
  Tensor<T> per_class;  // [Q, ways]: log-sum-exp over each class's supports
  if (equal) {
    // K shots of every class: one gather into [Q, ways, K] and one reduction.
    std::vector<Index> order;
    order.reserve(labels.size());
    for (const auto& m : members) order.insert(order.end(), m.begin(), m.end());
    const auto shots = static_cast<Index>(members[0].size());
    per_class =
        logsumexp(reshape(index_select(logits, 1, order), std::vector<Index>{q, ways, shots}), 2);
  } else {
    std::vector<Tensor<T>> columns;
    columns.reserve(members.size());
    for (const auto& m : members) columns.push_back(logsumexp(index_select(logits, 1, m), 1, true));
    per_class = concat<T>(columns, 1);
  }
  return sub(per_class, logsumexp(logits, 1, true));
}

}  // namespace metalearn::algorithms
