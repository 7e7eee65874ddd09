#pragma once
/// @file
/// SGD with momentum, Nesterov momentum and weight decay.
// SPDX-License-Identifier: MIT

#include <vector>

#include "metalearn/autograd/grad_mode.hpp"
#include "metalearn/core/export.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/optim/optimizer.hpp"
#include "metalearn/tensor/factory.hpp"

namespace metalearn::optim {

/// Options of SGD: `SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true}`.
struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

/// Stochastic gradient descent, with PyTorch's update rule:
/// @code{.unparsed}
///   g <- grad + weight_decay * p
///   b <- g (first step), else momentum * b + (1 - dampening) * g
///   g <- g + momentum * b (Nesterov), or g <- b (momentum != 0)
///   p <- p - lr * g
/// @endcode
/// Buffer per parameter: "momentum_buffer" (with momentum only).
template <class T = float>
class METALEARN_API SGD : public Optimizer<T> {
 public:
  SGD(std::vector<Tensor<T>> params, const SGDOptions& options)
      : Optimizer<T>(std::move(params), options.lr, "SGD", {"momentum_buffer"}), options_(options) {
    METALEARN_CHECK(options.momentum >= 0.0 && options.weight_decay >= 0.0, ValueError,
                    "SGD: momentum ", options.momentum, " and weight decay ", options.weight_decay,
                    " must be non-negative");
    METALEARN_CHECK(!options.nesterov || (options.momentum > 0.0 && options.dampening == 0.0),
                    ValueError, "SGD: Nesterov momentum needs momentum > 0 and dampening 0");
  }
  SGD(const nn::Module<T>& module, const SGDOptions& options) : SGD(module.parameters(), options) {}

  using Optimizer<T>::step;
  void step(const std::vector<Tensor<T>>& grads) override {
    this->check_gradients(grads);
    autograd::NoGradGuard no_grad;
    const T lr = static_cast<T>(this->lr());
    const T mom = static_cast<T>(options_.momentum);
    const T damp = static_cast<T>(options_.dampening);
    const T wd = static_cast<T>(options_.weight_decay);
    const auto& ps = this->parameters();
    for (std::size_t i = 0; i < ps.size(); ++i) {
      const Tensor<T>& g = grads[i];
      if (!g.defined()) continue;
      // Elementwise loops: every element's arithmetic is the same wherever the
      // buffers live, so a restored state continues bit-exactly.
      T* p = ps[i].data();
      const T* pg = g.data();
      const Index n = ps[i].numel();
      if (mom == T(0) && wd == T(0)) {  // plain SGD, in a loop the compiler vectorises
        T* __restrict pr = p;
        const T* __restrict gr = pg;
        for (Index k = 0; k < n; ++k) pr[k] -= lr * gr[k];
        continue;
      }
      Tensor<T>& buf = this->buffer(i, 0);
      const bool first = mom != T(0) && !buf.defined();
      if (first) buf = Tensor<T>::empty(ps[i].shape());
      T* pb = mom != T(0) ? buf.data() : nullptr;
      for (Index k = 0; k < n; ++k) {
        T d = wd != T(0) ? pg[k] + wd * p[k] : pg[k];
        if (pb != nullptr) {
          pb[k] = first ? d : mom * pb[k] + (T(1) - damp) * d;
          d = options_.nesterov ? d + mom * pb[k] : pb[k];
        }
        p[k] -= lr * d;
      }
    }
    this->count_step();
  }

  [[nodiscard]] const SGDOptions& options() const noexcept { return options_; }

 private:
  SGDOptions options_;
};

extern template class SGD<float>;
extern template class SGD<double>;

}  // namespace metalearn::optim
