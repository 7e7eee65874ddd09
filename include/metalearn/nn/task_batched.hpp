#pragma once
/// @file
/// TaskBatched: runs any module over a batch of tasks, each task with its own
/// parameters, as one graph.
///
/// @code
///   nn::TaskBatched<float> batched(model);
///   // x [B, n, ...]; every parameter of `stacked` [B, ...its shape]
///   Tensor<float> y = batched.forward(x, stacked);  // slice b: model.forward(x[b], stacked[b])
/// @endcode
///
/// Linear, the elementwise activations and chains of them (Sequential, MLP) have a
/// batched rule: all tasks run as batched products, which is where the speed of a
/// task-batched meta-step comes from (benchmarks/bench_maml.cpp, BM_MamlSinusoidMetaStep
/// with batch_tasks). Any other module runs task by task on its slices and the results
/// are stacked: the same values, one graph, no speed-up. Modules stay unaware of the
/// adapter; it asks for their kinds by type.
// SPDX-License-Identifier: MIT

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/nn/modules/activation.hpp"
#include "metalearn/nn/modules/linear.hpp"
#include "metalearn/nn/modules/mlp.hpp"
#include "metalearn/nn/modules/sequential.hpp"
#include "metalearn/nn/param_dict.hpp"
#include "metalearn/tensor/ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::nn {

/// A module run over a batch of tasks (see the file's description). Holds a reference:
/// the module must outlive the adapter.
template <class T = float>
class TaskBatched {
 public:
  explicit TaskBatched(const Module<T>& module) noexcept : module_(&module) {}

  /// Whether every module of the tree has a batched rule (Linear, ReLU, Tanh,
  /// Sigmoid, LeakyReLU, and Sequential or MLP made of them); otherwise forward()
  /// still works, task by task where a module has none.
  [[nodiscard]] bool fused() const { return fused(*module_); }

  /// `x` [B, n, ...] and every parameter the module reads from `params` with a
  /// leading task dimension [B, ...its shape]: the result's slice b is
  /// module.forward(x[b], params[b]), differentiable to any order.
  /// @throws ShapeError when `x` has no task dimension or a parameter's shape is not
  /// [B, ...its shape]; ValueError when a parameter is missing (naming it and the
  /// module).
  [[nodiscard]] Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>& params) const {
    METALEARN_CHECK(x.defined() && x.dim() >= 2, ShapeError, "TaskBatched<", module_->type_name(),
                    ">::forward: input ", x.defined() ? x.shape() : Shape{},
                    " has no leading task dimension [tasks, n, ...]");
    return run(*module_, x, params);
  }

  /// The module the adapter runs.
  [[nodiscard]] const Module<T>& module() const noexcept { return *module_; }

 private:
  [[nodiscard]] static bool elementwise(const Module<T>& m) {
    return dynamic_cast<const ReLU<T>*>(&m) != nullptr ||
           dynamic_cast<const Tanh<T>*>(&m) != nullptr ||
           dynamic_cast<const Sigmoid<T>*>(&m) != nullptr ||
           dynamic_cast<const LeakyReLU<T>*>(&m) != nullptr;
  }
  [[nodiscard]] static bool chain(const Module<T>& m) {
    return dynamic_cast<const Sequential<T>*>(&m) != nullptr ||
           dynamic_cast<const MLP<T>*>(&m) != nullptr;
  }

  [[nodiscard]] static bool fused(const Module<T>& m) {
    if (dynamic_cast<const Linear<T>*>(&m) != nullptr || elementwise(m)) return true;
    if (!chain(m)) return false;
    for (const auto& [name, child] : m.named_children()) {
      if (!fused(*child)) return false;
    }
    return true;
  }

  /// The entry `name` of `params`, checked to be `shape` behind a leading dimension
  /// of `tasks`.
  [[nodiscard]] static const Tensor<T>& stacked(const Module<T>& m, const ParamDict<T>& params,
                                                std::string_view name, const Shape& shape,
                                                Index tasks) {
    const Tensor<T>* t = params.find(name);
    METALEARN_CHECK(t != nullptr, ValueError, "TaskBatched<", m.type_name(),
                    ">::forward: parameter '", params.prefix(), name, "' is missing");
    std::vector<Index> expected{tasks};
    for (Index d : shape.dims()) expected.push_back(d);
    METALEARN_CHECK(t->shape() == Shape(expected), ShapeError, "TaskBatched<", m.type_name(),
                    ">::forward: parameter '", params.prefix(), name, "' has shape ", t->shape(),
                    " but ", tasks, " tasks of ", m.type_name(), " need ", Shape(expected));
    return *t;
  }

  [[nodiscard]] static Tensor<T> run(const Module<T>& m, const Tensor<T>& x,
                                     const ParamDict<T>& params) {
    const Index tasks = x.shape()[0];
    if (const auto* lin = dynamic_cast<const Linear<T>*>(&m)) {
      const Index in = lin->in_features(), out = lin->out_features();
      METALEARN_CHECK(x.dim() == 3 && x.shape()[2] == in, ShapeError,
                      "TaskBatched<Linear>::forward: input ", x.shape(), " is not [tasks, n, ", in,
                      "]");
      Tensor<T> y = mm(x, stacked(m, params, "weight", Shape{out, in}, tasks), false, true);
      if (lin->bias().defined()) {
        y = add(y, reshape(stacked(m, params, "bias", Shape{out}, tasks), Shape{tasks, 1, out}));
      }
      return y;
    }
    // A leading task dimension changes nothing for an elementwise map.
    if (elementwise(m)) return m.forward(x, params);
    if (chain(m)) {
      Tensor<T> h = x;
      for (const auto& [name, child] : m.named_children()) {
        h = run(*child, h, params.sub(name + "."));
      }
      return h;
    }
    return task_by_task(m, x, params);
  }

  /// Slice b of every input through m.forward, stacked.
  [[nodiscard]] static Tensor<T> task_by_task(const Module<T>& m, const Tensor<T>& x,
                                              const ParamDict<T>& params) {
    const Index tasks = x.shape()[0];
    const ParamDict<T> own = m.named_parameters();
    std::vector<const Tensor<T>*> all;
    all.reserve(own.size());
    for (const auto& [name, p] : own) all.push_back(&stacked(m, params, name, p.shape(), tasks));
    std::vector<Tensor<T>> outs;
    outs.reserve(static_cast<std::size_t>(tasks));
    for (Index b = 0; b < tasks; ++b) {
      ParamDict<T> slice;
      std::size_t i = 0;
      for (const auto& [name, p] : own) slice.insert(name, select(*all[i++], 0, b));
      outs.push_back(m.forward(select(x, 0, b), slice));
    }
    return stack(outs, 0);
  }

  const Module<T>* module_;
};

}  // namespace metalearn::nn
