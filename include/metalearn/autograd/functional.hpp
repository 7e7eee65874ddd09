#pragma once
/// @file
/// Higher-order helpers built on autograd::grad: vjp, hvp, jacobian, hessian.

#include <functional>
#include <vector>

#include "metalearn/autograd/grad.hpp"
#include "metalearn/tensor/factory.hpp"
#include "metalearn/tensor/ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::autograd {

/// Hessian-vector product of a scalar `output` with respect to `inputs` along `v`
/// (one tensor per input): H v = d/dx <grad output, v>. The graph of `output` is
/// retained; with create_graph the result can be differentiated again.
template <class T>
std::vector<Tensor<T>> hvp(const Tensor<T>& output, const std::vector<Tensor<T>>& inputs,
                           const std::vector<Tensor<T>>& v, bool create_graph = false) {
  METALEARN_CHECK(v.size() == inputs.size(), ValueError, "hvp: ", v.size(), " vectors for ",
                  inputs.size(), " inputs");
  auto g = grad({output}, inputs, GradOptions{.retain_graph = true, .create_graph = true});
  Tensor<T> dot;
  for (std::size_t i = 0; i < g.size(); ++i) {
    METALEARN_CHECK(v[i].shape() == inputs[i].shape(), ShapeError, "hvp: vector ", i,
                    " has shape ", v[i].shape(), " but input has shape ", inputs[i].shape());
    Tensor<T> term = sum(mul(g[i], v[i]));
    dot = dot.defined() ? add(dot, term) : term;
  }
  // The double-backward pass runs through the graph of `output` too: retain it,
  // so hvp can be called again on the same output.
  return grad({dot}, inputs,
              GradOptions{.retain_graph = true, .create_graph = create_graph,
                          .allow_unused = true});
}

/// Jacobian of f at x: [f(x).numel(), x.numel()].
template <class T>
Tensor<T> jacobian(const std::function<Tensor<T>(const Tensor<T>&)>& f, const Tensor<T>& x) {
  Tensor<T> xi = x.detach().clone().requires_grad(true);
  Tensor<T> y = f(xi);
  const Index m = y.numel();
  const Index n = x.numel();
  Tensor<T> jac = zeros<T>(Shape{m, n});
  if (!y.requires_grad()) return jac;  // f does not depend on x (e.g. the gradient of a linear f)
  for (Index r = 0; r < m; ++r) {
    Tensor<T> e = zeros<T>(y.shape());
    e.data()[r] = T(1);
    auto g = grad({y}, {xi}, GradOptions{.retain_graph = true, .allow_unused = true}, {e});
    if (g[0].defined()) std::copy_n(g[0].data(), n, jac.data() + r * n);
  }
  return jac;
}

/// Hessian of a scalar function f at x: [x.numel(), x.numel()].
template <class T>
Tensor<T> hessian(const std::function<Tensor<T>(const Tensor<T>&)>& f, const Tensor<T>& x) {
  return jacobian<T>(
      [&f](const Tensor<T>& z) {
        Tensor<T> y = f(z);
        METALEARN_CHECK(y.numel() == 1, ShapeError, "hessian: f must return one element, got ",
                        y.shape());
        auto g = grad({y}, {z}, GradOptions{.create_graph = true, .allow_unused = true});
        return g[0].defined() ? reshape(g[0], std::vector<Index>{z.numel()}) : zeros<T>(Shape{z.numel()});
      },
      x);
}

}  // namespace metalearn::autograd
