#pragma once
/// @file
/// The functional gradient API: autograd::grad(outputs, inputs, options).

#include <initializer_list>
#include <vector>

#include "metalearn/core/export.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::autograd {

/// Options of autograd::grad().
struct GradOptions {
  /// Keep the graph's saved tensors so it can be differentiated again. Implied by
  /// create_graph.
  bool retain_graph = false;
  /// Record the backward pass, so the returned gradients can be differentiated
  /// again (second and higher order).
  bool create_graph = false;
  /// Return an undefined tensor for inputs the outputs do not depend on, instead of
  /// throwing AutogradError.
  bool allow_unused = false;
};

namespace detail {
/// The engine: an iterative pass over the graph in topological order, each node
/// once. With `capture` it returns gradients w.r.t. `inputs`; otherwise it
/// accumulates into the .grad() of leaves. Implemented in src/autograd/engine.cpp.
template <class T>
METALEARN_API std::vector<Tensor<T>> run_backward(const std::vector<Tensor<T>>& outputs,
                                                  const std::vector<Tensor<T>>& grad_outputs,
                                                  const std::vector<Tensor<T>>& inputs,
                                                  bool capture, GradOptions options);
extern template std::vector<Tensor<float>> run_backward(const std::vector<Tensor<float>>&,
                                                        const std::vector<Tensor<float>>&,
                                                        const std::vector<Tensor<float>>&, bool,
                                                        GradOptions);
extern template std::vector<Tensor<double>> run_backward(const std::vector<Tensor<double>>&,
                                                         const std::vector<Tensor<double>>&,
                                                         const std::vector<Tensor<double>>&, bool,
                                                         GradOptions);
}  // namespace detail

/// Gradients of sum_i <outputs[i], grad_outputs[i]> with respect to each input,
/// without touching any .grad(). grad_outputs may be empty when every output has
/// one element (it then defaults to ones).
template <class T>
std::vector<Tensor<T>> grad(const std::vector<Tensor<T>>& outputs,
                            const std::vector<Tensor<T>>& inputs, GradOptions options = {},
                            const std::vector<Tensor<T>>& grad_outputs = {}) {
  return detail::run_backward(outputs, grad_outputs, inputs, true, options);
}

template <class T>
std::vector<Tensor<T>> grad(std::initializer_list<Tensor<T>> outputs,
                            std::initializer_list<Tensor<T>> inputs, GradOptions options = {},
                            std::initializer_list<Tensor<T>> grad_outputs = {}) {
  return detail::run_backward(std::vector<Tensor<T>>(outputs), std::vector<Tensor<T>>(grad_outputs),
                              std::vector<Tensor<T>>(inputs), true, options);
}

/// Accumulates gradients of the outputs into the .grad() of every reachable leaf.
template <class T>
void backward(const std::vector<Tensor<T>>& outputs, const std::vector<Tensor<T>>& grad_outputs = {},
              BackwardOptions options = {}) {
  detail::run_backward(outputs, grad_outputs, {}, false,
                       GradOptions{options.retain_graph, options.create_graph, true});
}

}  // namespace metalearn::autograd
