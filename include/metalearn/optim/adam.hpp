#pragma once
/// @file
/// Adam and AdamW.
// SPDX-License-Identifier: MIT

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "metalearn/autograd/grad_mode.hpp"
#include "metalearn/core/export.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/optim/optimizer.hpp"
#include "metalearn/tensor/factory.hpp"

namespace metalearn::optim {

/// Options of Adam / AdamW: `AdamOptions{.lr = 1e-3, .beta2 = 0.99}`.
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  /// L2 penalty (Adam) or decoupled decay (AdamW); unset: 0 for Adam, 0.01 for AdamW.
  std::optional<double> weight_decay{};
};

/// Adam (Kingma & Ba) with PyTorch's update rule, at step t (from 1):
/// @code{.unparsed}
///   g <- grad + weight_decay * p              (Adam: L2 penalty in the gradient)
///   p <- p * (1 - lr * weight_decay)          (AdamW: decoupled decay instead)
///   m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2
///   p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// @endcode
/// Buffers per parameter: "exp_avg" (m) and "exp_avg_sq" (v).
template <class T = float>
class METALEARN_API Adam : public Optimizer<T> {
 public:
  Adam(std::vector<Tensor<T>> params, const AdamOptions& options)
      : Adam(std::move(params), options, false, "Adam") {}
  Adam(const nn::Module<T>& module, const AdamOptions& options)
      : Adam(module.parameters(), options) {}

  using Optimizer<T>::step;
  void step(const std::vector<Tensor<T>>& grads) override {
    this->check_gradients(grads);
    autograd::NoGradGuard no_grad;
    this->count_step();
    const auto t = static_cast<double>(this->step_count());
    const double lr = this->lr();
    const T b1 = static_cast<T>(beta1_);
    const T b2 = static_cast<T>(beta2_);
    const T wd = static_cast<T>(weight_decay_);
    const T step_size = static_cast<T>(lr / (1.0 - std::pow(beta1_, t)));
    const T bc2_sqrt = static_cast<T>(std::sqrt(1.0 - std::pow(beta2_, t)));
    const T eps = static_cast<T>(eps_);
    const T decay = static_cast<T>(1.0 - lr * weight_decay_);
    const auto& ps = this->parameters();
    for (std::size_t i = 0; i < ps.size(); ++i) {
      const Tensor<T>& g = grads[i];
      if (!g.defined()) continue;
      Tensor<T>& m = this->buffer(i, 0);
      Tensor<T>& v = this->buffer(i, 1);
      if (!m.defined()) m = zeros<T>(ps[i].shape());
      if (!v.defined()) v = zeros<T>(ps[i].shape());
      // Elementwise loops over distinct buffers, which the compiler vectorises; every
      // element's arithmetic is the same in the vector body and the scalar rest, so
      // results do not depend on where the buffers live and a restored state
      // continues bit-exactly.
      T* __restrict p = ps[i].data();
      T* __restrict pm = m.data();
      T* __restrict pv = v.data();
      const T* __restrict pg = g.data();
      const Index n = ps[i].numel();
      if (decoupled_ && weight_decay_ != 0.0) {
        for (Index k = 0; k < n; ++k) p[k] *= decay;
      }
      if (!decoupled_ && weight_decay_ != 0.0) {
        for (Index k = 0; k < n; ++k) {
          const T gk = pg[k] + wd * p[k];
          pm[k] = b1 * pm[k] + (T(1) - b1) * gk;
          pv[k] = b2 * pv[k] + (T(1) - b2) * gk * gk;
        }
      } else {
        for (Index k = 0; k < n; ++k) {
          const T gk = pg[k];
          pm[k] = b1 * pm[k] + (T(1) - b1) * gk;
          pv[k] = b2 * pv[k] + (T(1) - b2) * gk * gk;
        }
      }
      constexpr Index kChunk = 512;
      T root[kChunk];
      for (Index k0 = 0; k0 < n; k0 += kChunk) {
        const Index len = std::min(kChunk, n - k0);
        std::copy_n(pv + k0, len, root);
        detail::sqrt_in_place(root, len);
        for (Index k = 0; k < len; ++k)
          p[k0 + k] -= step_size * pm[k0 + k] / (root[k] / bc2_sqrt + eps);
      }
    }
  }

  [[nodiscard]] double beta1() const noexcept { return beta1_; }
  [[nodiscard]] double beta2() const noexcept { return beta2_; }
  [[nodiscard]] double eps() const noexcept { return eps_; }
  [[nodiscard]] double weight_decay() const noexcept { return weight_decay_; }
  [[nodiscard]] bool decoupled_weight_decay() const noexcept { return decoupled_; }

 protected:
  Adam(std::vector<Tensor<T>> params, const AdamOptions& options, bool decoupled, const char* name)
      : Optimizer<T>(std::move(params), options.lr, name, {"exp_avg", "exp_avg_sq"}),
        beta1_(options.beta1),
        beta2_(options.beta2),
        eps_(options.eps),
        weight_decay_(options.weight_decay.value_or(decoupled ? 0.01 : 0.0)),
        decoupled_(decoupled) {
    METALEARN_CHECK(beta1_ >= 0.0 && beta1_ < 1.0 && beta2_ >= 0.0 && beta2_ < 1.0, ValueError,
                    name, ": betas (", beta1_, ", ", beta2_, ") must lie in [0, 1)");
    METALEARN_CHECK(eps_ >= 0.0 && weight_decay_ >= 0.0, ValueError, name, ": eps ", eps_,
                    " and weight decay ", weight_decay_, " must be non-negative");
  }

 private:
  double beta1_, beta2_, eps_, weight_decay_;
  bool decoupled_;
};

/// Adam with decoupled weight decay (Loshchilov & Hutter); weight decay defaults to
/// 0.01 as in PyTorch.
template <class T = float>
class METALEARN_API AdamW : public Adam<T> {
 public:
  AdamW(std::vector<Tensor<T>> params, const AdamOptions& options)
      : Adam<T>(std::move(params), options, true, "AdamW") {}
  AdamW(const nn::Module<T>& module, const AdamOptions& options)
      : AdamW(module.parameters(), options) {}
};

extern template class Adam<float>;
extern template class Adam<double>;
extern template class AdamW<float>;
extern template class AdamW<double>;

}  // namespace metalearn::optim
