#pragma once
/// @file
/// Multi-head scaled dot-product attention (Vaswani et al.\ 2017), as the Attentive
/// Neural Process uses it (Kim et al.\ 2019): for each of H heads, queries, keys and
/// values are projected to dh features, softmax(Q K^T / sqrt(dh)) weights the values,
/// and the heads' outputs are projected back together.
///
/// @code{.unparsed}
///   Q_h = q Wq_h^T,  K_h = k Wk_h^T,  V_h = v Wv_h^T          [M, dh], [C, dh], [C, dh]
///   O_h = softmax(Q_h K_h^T / sqrt(dh)) V_h                   [M, dh]
///   out = [O_1 ... O_H] Wo^T                                  [M, out]
/// @endcode
///
/// No biases, as in the reference. Every piece is a differentiable op, so the layer runs
/// on fast weights and differentiates to any order.
// SPDX-License-Identifier: MIT

#include <cmath>
#include <string>

#include "metalearn/core/error.hpp"
#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/nn/init.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/tensor/ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::nn {

namespace functional {

/// Multi-head attention of queries `q` [M, dq] over keys `k` [C, dk] and values `v`
/// [C, dv] with projections `wq` [H dh, dq], `wk` [H dh, dk], `wv` [H dh, dv] and `wo`
/// [out, H dh], in `heads` heads of dh features each. Returns [M, out].
/// @throws ShapeError naming the mismatching operand.
template <class T>
Tensor<T> multihead_attention(const Tensor<T>& q, const Tensor<T>& k, const Tensor<T>& v,
                              const Tensor<T>& wq, const Tensor<T>& wk, const Tensor<T>& wv,
                              const Tensor<T>& wo, Index heads) {
  const char* f = "multihead_attention";
  METALEARN_CHECK(heads > 0, ValueError, f, ": ", heads, " heads (need >= 1)");
  METALEARN_CHECK(q.dim() == 2 && k.dim() == 2 && v.dim() == 2 && k.shape()[0] == v.shape()[0] &&
                      k.shape()[0] > 0,
                  ShapeError, f, ": queries ", q.shape(), ", keys ", k.shape(), " and values ",
                  v.shape(), " must be [M, dq], [C, dk] and [C, dv] with C >= 1");
  METALEARN_CHECK(wq.dim() == 2 && wk.dim() == 2 && wv.dim() == 2 && wo.dim() == 2 &&
                      wq.shape()[1] == q.shape()[1] && wk.shape()[1] == k.shape()[1] &&
                      wv.shape()[1] == v.shape()[1] && wq.shape()[0] == wk.shape()[0] &&
                      wq.shape()[0] == wv.shape()[0] && wo.shape()[1] == wq.shape()[0] &&
                      wq.shape()[0] % heads == 0,
                  ShapeError, f, ": projections ", wq.shape(), ", ", wk.shape(), ", ", wv.shape(),
                  " and ", wo.shape(), " do not fit queries ", q.shape(), ", keys ", k.shape(),
                  ", values ", v.shape(), " and ", heads, " heads");
  const Index m = q.shape()[0];
  const Index c = k.shape()[0];
  const Index dh = wq.shape()[0] / heads;
  // [n, H dh] -> [H, n, dh]
  const auto split = [&](const Tensor<T>& x, const Tensor<T>& w, Index n) {
    return permute(reshape(mm(x, w, false, true), Shape{n, heads, dh}), {1, 0, 2});
  };
  const Tensor<T> qh = split(q, wq, m);
  const Tensor<T> kh = split(k, wk, c);
  const Tensor<T> vh = split(v, wv, c);
  const Tensor<T> logits =
      mul_scalar(mm(qh, kh, false, true), T(1) / std::sqrt(static_cast<T>(dh)));
  const Tensor<T> o = bmm(softmax(logits, 2), vh);  // [H, M, dh]
  return mm(reshape(permute(o, {1, 0, 2}), Shape{m, heads * dh}), wo, false, true);
}

}  // namespace functional

/// Multi-head attention with parameters "q_proj", "k_proj", "v_proj" and "out_proj",
/// initialised as the reference does: normal with standard deviation dq^-1/2 for the
/// query and key projections and dv^-1/2 for the value and output projections.
/// forward(x) is self-attention (x as queries, keys and values); attend(q, k, v) is
/// the general form.
template <class T = float>
class MultiheadAttention : public Cloneable<MultiheadAttention<T>, T> {
 public:
  using Module<T>::forward;

  /// @param query_dim features of the queries
  /// @param key_dim   features of the keys
  /// @param value_dim features of the values
  /// @param heads     number of heads H
  /// @param gen       draws the initial weights
  /// @param head_dim  features per head (0: value_dim / heads)
  /// @param out_dim   output features (0: value_dim)
  MultiheadAttention(Index query_dim, Index key_dim, Index value_dim, Index heads, Generator& gen,
                     Index head_dim = 0, Index out_dim = 0)
      : query_dim_(query_dim), key_dim_(key_dim), value_dim_(value_dim), heads_(heads) {
    METALEARN_CHECK(
        query_dim > 0 && key_dim > 0 && value_dim > 0 && heads > 0 && head_dim >= 0 && out_dim >= 0,
        ValueError, "MultiheadAttention: sizes (query ", query_dim, ", key ", key_dim, ", value ",
        value_dim, ", heads ", heads, ", head ", head_dim, ", out ", out_dim, ") must be positive");
    head_dim_ = head_dim > 0 ? head_dim : value_dim / heads;
    METALEARN_CHECK(head_dim_ > 0, ValueError, "MultiheadAttention: value_dim ", value_dim,
                    " is smaller than the number of heads ", heads, "; pass head_dim");
    out_dim_ = out_dim > 0 ? out_dim : value_dim;
    const Index inner = heads * head_dim_;
    const auto make = [&](const char* name, Index rows, Index cols, Index fan) {
      auto w = zeros<T>(Shape{rows, cols});
      init::normal(w, gen, 0.0, 1.0 / std::sqrt(static_cast<double>(fan)));
      this->register_parameter(name, w);
    };
    make("q_proj", inner, query_dim, query_dim);
    make("k_proj", inner, key_dim, query_dim);
    make("v_proj", inner, value_dim, value_dim);
    make("out_proj", out_dim_, inner, value_dim);
  }

  /// Self-attention: attend(x, x, x).
  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>& params) const override {
    return attend(x, x, x, params);
  }
  /// Attention of `q` [M, query_dim] over keys `k` [C, key_dim] and values `v`
  /// [C, value_dim], with the given parameters; [M, out_dim].
  [[nodiscard]] Tensor<T> attend(const Tensor<T>& q, const Tensor<T>& k, const Tensor<T>& v,
                                 const ParamDict<T>& params) const {
    return functional::multihead_attention(q, k, v, this->param(params, 0), this->param(params, 1),
                                           this->param(params, 2), this->param(params, 3), heads_);
  }
  [[nodiscard]] Tensor<T> attend(const Tensor<T>& q, const Tensor<T>& k, const Tensor<T>& v) const {
    return attend(q, k, v, this->named_parameters());
  }

  [[nodiscard]] std::string type_name() const override { return "MultiheadAttention"; }
  [[nodiscard]] std::string extra_repr() const override {
    return "query=" + std::to_string(query_dim_) + ", key=" + std::to_string(key_dim_) +
           ", value=" + std::to_string(value_dim_) + ", heads=" + std::to_string(heads_) +
           ", head_dim=" + std::to_string(head_dim_) + ", out=" + std::to_string(out_dim_);
  }
  [[nodiscard]] Index heads() const noexcept { return heads_; }
  [[nodiscard]] Index out_dim() const noexcept { return out_dim_; }

 private:
  Index query_dim_, key_dim_, value_dim_, heads_, head_dim_ = 0, out_dim_ = 0;
};

}  // namespace metalearn::nn
