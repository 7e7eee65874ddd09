#pragma once
/// @file
/// Full context embeddings of Matching Networks (Vinyals et al., NeurIPS 2016,
/// appendix A): the support embeddings are read by a bidirectional LSTM and each
/// query embedding by an LSTM that attends over the whole support set, so that both
/// depend on the episode rather than on one example alone.
///
/// @code{.unparsed}
///   supports (g' the embedding of the S supports, in the order given):
///     fw_i, bw_i = forward / backward LSTM over g'_1 .. g'_S   (zero initial states)
///     g_i = g'_i + fw_i + bw_i
///   queries (f' the embedding of a query, K processing steps, h_0 = c_0 = 0):
///     r_{k-1} = sum_i softmax_i(h_{k-1} . g_i) g_i
///     h^_k, c_k = LSTM(input [f', r_{k-1}], state (h_{k-1}, c_{k-1}))
///     h_k = h^_k + f'
///     f = h_K
/// @endcode
///
/// The paper's LSTM reads f' with the state [h_{k-1}, r_{k-1}]; its gates are affine
/// in the concatenation, which is what an LSTM cell with input [f', r_{k-1}] and state
/// h_{k-1} computes, so the attention cell here takes inputs of size 2D and keeps a
/// state of size D.
// SPDX-License-Identifier: MIT

#include <memory>
#include <string>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/nn/modules/lstm_cell.hpp"
#include "metalearn/tensor/ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::algorithms {

/// The two context encoders of full context embeddings for embeddings of width `dim`
/// and `steps` (K) attention steps: submodules `support_forward`, `support_backward`
/// (LSTMCell D -> D) and `query_attention` (LSTMCell 2D -> D). forward(x) is the
/// support encoding g of a support set's embeddings x [S, D].
template <class T = float>
class FullContextEmbedding : public nn::Cloneable<FullContextEmbedding<T>, T> {
 public:
  using nn::Module<T>::forward;

  /// @throws ValueError when `dim` or `steps` is not positive.
  FullContextEmbedding(Index dim, int steps, Generator& gen) : dim_(dim), steps_(steps) {
    METALEARN_CHECK(dim > 0 && steps > 0, ValueError, "FullContextEmbedding: width ", dim,
                    " and attention steps ", steps, " must be positive");
    fw_ =
        this->register_module("support_forward", std::make_shared<nn::LSTMCell<T>>(dim, dim, gen));
    bw_ =
        this->register_module("support_backward", std::make_shared<nn::LSTMCell<T>>(dim, dim, gen));
    att_ = this->register_module("query_attention",
                                 std::make_shared<nn::LSTMCell<T>>(2 * dim, dim, gen));
  }

  /// g [S, D]: the support embeddings `support` [S, D] with both directions' LSTM
  /// states added, read in the order of the rows.
  [[nodiscard]] Tensor<T> encode_support(const Tensor<T>& support,
                                         const nn::ParamDict<T>& params) const {
    check_width(support, "encode_support");
    const Index s = support.shape()[0];
    const auto& fw = this->child(fw_);
    const auto& bw = this->child(bw_);
    const nn::ParamDict<T> fw_params = this->child_params(params, fw_);
    const nn::ParamDict<T> bw_params = this->child_params(params, bw_);
    std::vector<Tensor<T>> rows(static_cast<std::size_t>(s));
    for (Index i = 0; i < s; ++i) rows[static_cast<std::size_t>(i)] = slice(support, 0, i, i + 1);
    std::vector<Tensor<T>> forward_h(rows.size()), backward_h(rows.size());
    auto state = fw.zero_state(1);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      state = fw.step(rows[i], state, fw_params);
      forward_h[i] = state.h;
    }
    state = bw.zero_state(1);
    for (std::size_t i = rows.size(); i-- > 0;) {
      state = bw.step(rows[i], state, bw_params);
      backward_h[i] = state.h;
    }
    return add(add(support, concat<T>(forward_h, 0)), concat<T>(backward_h, 0));
  }
  [[nodiscard]] Tensor<T> encode_support(const Tensor<T>& support) const {
    return encode_support(support, this->named_parameters());
  }

  /// f [Q, D]: the query embeddings `query` [Q, D] after K attention steps over the
  /// encoded supports `support` [S, D] (from encode_support()). Each query row is
  /// processed independently of the others.
  [[nodiscard]] Tensor<T> encode_query(const Tensor<T>& query, const Tensor<T>& support,
                                       const nn::ParamDict<T>& params) const {
    check_width(query, "encode_query");
    check_width(support, "encode_query");
    const auto& att = this->child(att_);
    const nn::ParamDict<T> att_params = this->child_params(params, att_);
    auto state = att.zero_state(query.shape()[0]);
    for (int k = 0; k < steps_; ++k) {
      const Tensor<T> weights = softmax(mm(state.h, support, false, true), 1);  // [Q, S]
      const Tensor<T> read = matmul(weights, support);                          // [Q, D]
      state = att.step(concat<T>({query, read}, 1), state, att_params);
      state.h = add(state.h, query);
    }
    return state.h;
  }
  [[nodiscard]] Tensor<T> encode_query(const Tensor<T>& query, const Tensor<T>& support) const {
    return encode_query(query, support, this->named_parameters());
  }

  /// encode_support(x, params).
  Tensor<T> forward(const Tensor<T>& x, const nn::ParamDict<T>& params) const override {
    return encode_support(x, params);
  }

  [[nodiscard]] Index dim() const noexcept { return dim_; }
  [[nodiscard]] int steps() const noexcept { return steps_; }
  [[nodiscard]] std::string type_name() const override { return "FullContextEmbedding"; }
  [[nodiscard]] std::string extra_repr() const override {
    return "dim=" + std::to_string(dim_) + ", steps=" + std::to_string(steps_);
  }

 private:
  void check_width(const Tensor<T>& x, const char* function) const {
    METALEARN_CHECK(x.dim() == 2 && x.shape()[0] > 0 && x.shape()[1] == dim_, ShapeError,
                    "FullContextEmbedding::", function, ": expected embeddings [N, ", dim_,
                    "] with N >= 1, got ", x.shape());
  }

  Index dim_;
  int steps_;
  nn::Child<nn::LSTMCell<T>> fw_, bw_, att_;
};

}  // namespace metalearn::algorithms
