#pragma once
/// @file
/// Differentiable functional updates for inner loops: ParamDict in, ParamDict out.
// SPDX-License-Identifier: MIT

#include <string>
#include <type_traits>
#include <vector>

#include "metalearn/autograd/grad.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/nn/param_dict.hpp"
#include "metalearn/tensor/ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::optim {

/// Gradients of `loss` with respect to every tensor of `params`, as a ParamDict with
/// the same names. With `options.create_graph` they stay differentiable (second-
/// order MAML); with `options.allow_unused` unused parameters get undefined
/// gradients, which the updates below treat as zero.
template <class T>
nn::ParamDict<T> gradients(const Tensor<T>& loss, const nn::ParamDict<T>& params,
                           autograd::GradOptions options = {}) {
  return params.with_values(autograd::grad({loss}, params.values(), options));
}

namespace detail {

template <class T>
void check_grads(const nn::ParamDict<T>& params, const std::vector<Tensor<T>>& grads,
                 const char* function) {
  METALEARN_CHECK(grads.size() == params.size(), ValueError, function, ": ", grads.size(),
                  " gradients for ", params.size(), " parameters");
  std::size_t i = 0;
  for (const auto& [name, p] : params) {
    const Tensor<T>& g = grads[i++];
    METALEARN_CHECK(!g.defined() || g.shape() == p.shape(), ShapeError, function, ": gradient of '",
                    name, "' has shape ", g.shape(), " but the parameter has ", p.shape());
  }
}

/// The gradients of `grads` in the order of `params` (looked up by name).
template <class T>
std::vector<Tensor<T>> aligned(const nn::ParamDict<T>& params, const nn::ParamDict<T>& grads) {
  if (grads.shares_keys_with(params)) return grads.values();
  std::vector<Tensor<T>> out;
  out.reserve(params.size());
  for (const auto& [name, p] : params) out.push_back(grads.at(name));
  return out;
}

}  // namespace detail

/// One differentiable SGD step with a constant learning rate: p - lr * g for every
/// entry. `grads` is aligned with `params` (the order of params.values(), e.g. the
/// result of autograd::grad); undefined gradients leave the parameter unchanged.
///
/// When the gradients were computed with create_graph, the result depends on the
/// parameters through them, so a meta-gradient flows through the update (MAML).
/// The result shares the key set of `params` (no rehashing).
template <class T>
nn::ParamDict<T> sgd_update(const nn::ParamDict<T>& params, const std::vector<Tensor<T>>& grads,
                            std::type_identity_t<T> lr) {
  detail::check_grads(params, grads, "sgd_update");
  std::vector<Tensor<T>> out;
  out.reserve(grads.size());
  std::size_t i = 0;
  for (const auto& [name, p] : params) {
    const Tensor<T>& g = grads[i++];
    out.push_back(g.defined() ? sub(p, mul_scalar(g, lr)) : p);
  }
  return params.with_values(std::move(out));
}

/// SGD step with a learning-rate tensor shared by all parameters: a 0-dim or
/// one-element tensor (a learnable scalar; the meta-gradient reaches it), or any
/// tensor broadcastable to every parameter.
template <class T>
nn::ParamDict<T> sgd_update(const nn::ParamDict<T>& params, const std::vector<Tensor<T>>& grads,
                            const Tensor<T>& lr) {
  detail::check_grads(params, grads, "sgd_update");
  std::vector<Tensor<T>> out;
  out.reserve(grads.size());
  std::size_t i = 0;
  const Tensor<T> step = lr.numel() == 1 && lr.dim() > 0 ? reshape(lr, Shape{}) : lr;
  for (const auto& [name, p] : params) {
    const Tensor<T>& g = grads[i++];
    if (!g.defined()) {
      out.push_back(p);
      continue;
    }
    Tensor<T> delta = mul(step, g);
    METALEARN_CHECK(delta.shape() == p.shape(), ShapeError, "sgd_update: learning rate ",
                    lr.shape(), " does not broadcast to parameter '", name, "' of shape ",
                    p.shape());
    out.push_back(sub(p, delta));
  }
  return params.with_values(std::move(out));
}

/// Meta-SGD step: every parameter has its own learning-rate tensor in `lrs` under
/// the same name, of the parameter's shape (or broadcastable to it). The learning
/// rates may require grad; the meta-gradient then reaches them.
template <class T>
nn::ParamDict<T> sgd_update(const nn::ParamDict<T>& params, const std::vector<Tensor<T>>& grads,
                            const nn::ParamDict<T>& lrs) {
  detail::check_grads(params, grads, "sgd_update");
  std::vector<Tensor<T>> out;
  out.reserve(grads.size());
  std::size_t i = 0;
  for (const auto& [name, p] : params) {
    const Tensor<T>& g = grads[i++];
    const Tensor<T>* lr = lrs.find(name);
    METALEARN_CHECK(lr != nullptr, ValueError, "sgd_update: no learning rate for parameter '", name,
                    "' in the learning-rate dict");
    if (!g.defined()) {
      out.push_back(p);
      continue;
    }
    Tensor<T> delta = mul(*lr, g);
    METALEARN_CHECK(delta.shape() == p.shape(), ShapeError, "sgd_update: learning rate of '", name,
                    "' has shape ", lr->shape(), ", which does not broadcast to ", p.shape());
    out.push_back(sub(p, delta));
  }
  return params.with_values(std::move(out));
}

/// The same updates with gradients given as a ParamDict (matched by name).
template <class T>
nn::ParamDict<T> sgd_update(const nn::ParamDict<T>& params, const nn::ParamDict<T>& grads,
                            std::type_identity_t<T> lr) {
  return sgd_update(params, detail::aligned(params, grads), lr);
}
template <class T>
nn::ParamDict<T> sgd_update(const nn::ParamDict<T>& params, const nn::ParamDict<T>& grads,
                            const Tensor<T>& lr) {
  return sgd_update(params, detail::aligned(params, grads), lr);
}
template <class T>
nn::ParamDict<T> sgd_update(const nn::ParamDict<T>& params, const nn::ParamDict<T>& grads,
                            const nn::ParamDict<T>& lrs) {
  return sgd_update(params, detail::aligned(params, grads), lrs);
}

/// A ParamDict of learning-rate tensors for Meta-SGD: one tensor per parameter,
/// of its shape, filled with `init` and requiring grad.
template <class T>
nn::ParamDict<T> make_lr_dict(const nn::ParamDict<T>& params, std::type_identity_t<T> init) {
  return params.map(
      [init](const Tensor<T>& p) { return full<T>(p.shape(), init).requires_grad(true); });
}

}  // namespace metalearn::optim
