#pragma once
/// @file
/// Sequential: submodules applied in order, named "0", "1", ...
// SPDX-License-Identifier: MIT

#include <memory>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "metalearn/core/export.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/nn/modules/activation.hpp"
#include "metalearn/nn/modules/conv.hpp"

namespace metalearn::nn {

/// A chain of modules applied in order. Submodule i is registered as "i", so its
/// parameters are named `i.weight`, ... (as in torch.nn.Sequential).
///
/// A ReLU directly followed by a MaxPool2d runs as the pool, then the ReLU: ReLU is
/// monotone, so for finite inputs both orders give the same values and gradients of
/// every order (each window's maximum is the same element), and the ReLU and its
/// backward touch a quarter of the values (a 2x2 pool).
///
/// @code
/// nn::Sequential<float> net;
/// net.push_back(std::make_shared<nn::Linear<float>>(2, 8, gen));
/// net.push_back(std::make_shared<nn::ReLU<float>>());
/// @endcode
template <class T = float>
class METALEARN_API Sequential : public Cloneable<Sequential<T>, T> {
 public:
  using Module<T>::forward;

  Sequential() = default;
  /// The modules in order; each must be referenced only by the vector (see
  /// Module::register_module).
  explicit Sequential(std::vector<std::shared_ptr<Module<T>>> modules) {
    for (auto& m : modules) push_back(std::move(m));
  }

  /// Appends a module under the next index; returns its handle (`net.child(handle)`).
  template <class M>
  Child<M> push_back(std::shared_ptr<M> module) {
    return this->register_module(std::to_string(this->num_children()), std::move(module));
  }

  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>& params) const override {
    return chain(x, params);
  }

  [[nodiscard]] std::size_t size() const noexcept { return this->num_children(); }
  [[nodiscard]] const Module<T>& operator[](std::size_t i) const { return this->child(i); }
  [[nodiscard]] Module<T>& operator[](std::size_t i) { return this->child(i); }

  [[nodiscard]] std::string type_name() const override { return "Sequential"; }

 private:
  Tensor<T> chain(const Tensor<T>& x, const ParamDict<T>& params) const {
    const auto run = [&](std::size_t i, const Tensor<T>& h) {
      return this->forward_child(i, h, params);
    };
    Tensor<T> h = x;
    const std::size_t n = this->num_children();
    for (std::size_t i = 0; i < n; ++i) {
      if (i + 1 < n && typeid(this->child(i)) == typeid(ReLU<T>) &&
          typeid(this->child(i + 1)) == typeid(MaxPool2d<T>)) {
        h = run(i, run(i + 1, h));  // pool, then ReLU
        ++i;
        continue;
      }
      h = run(i, h);
    }
    return h;
  }
};

extern template class Sequential<float>;
extern template class Sequential<double>;

}  // namespace metalearn::nn
