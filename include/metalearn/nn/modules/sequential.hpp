#pragma once
// Sequential: submodules applied in order, named "0", "1", ...
// SPDX-License-Identifier: MIT

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "metalearn/nn/module.hpp"

namespace metalearn::nn {

/// A chain of modules applied in order. Submodule i is registered as "i", so its
/// parameters are named `i.weight`, ... (as in torch.nn.Sequential).
///
/// @code
/// nn::Sequential<float> net;
/// net.push_back(std::make_shared<nn::Linear<float>>(2, 8, gen));
/// net.push_back(std::make_shared<nn::ReLU<float>>());
/// @endcode
template <class T = float>
class Sequential : public Cloneable<Sequential<T>, T> {
 public:
  using Module<T>::forward;

  Sequential() = default;
  explicit Sequential(const std::vector<std::shared_ptr<Module<T>>>& modules) {
    for (const auto& m : modules) push_back(m);
  }

  /// Appends a module under the next index; returns it.
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    return this->register_module(std::to_string(this->num_children()), std::move(module));
  }

  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>& params) const override {
    return this->forward_chain(x, params, false);
  }
  /// True when every submodule supports it.
  [[nodiscard]] bool supports_task_batch() const override {
    return this->children_support_task_batch();
  }
  Tensor<T> forward_tasks(const Tensor<T>& x, const ParamDict<T>& params) const override {
    return this->forward_chain(x, params, true);
  }

  [[nodiscard]] std::size_t size() const noexcept { return this->num_children(); }
  [[nodiscard]] const Module<T>& operator[](std::size_t i) const { return this->child(i); }
  [[nodiscard]] Module<T>& operator[](std::size_t i) { return this->child(i); }

  [[nodiscard]] std::string type_name() const override { return "Sequential"; }
};

extern template class Sequential<float>;
extern template class Sequential<double>;

}  // namespace metalearn::nn
