#pragma once
/// @file
/// Optimizer<T>: the base of the outer-loop optimizers (SGD, Adam, AdamW), with
/// savable state.
// SPDX-License-Identifier: MIT

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/nn/param_dict.hpp"
#include "metalearn/tensor/detail/simd_kernels.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::optim {

namespace detail {
using metalearn::detail::sqrt_in_place;  // compiled per target, see tensor/detail/simd_kernels.hpp
}  // namespace detail

/// Everything an optimizer needs to continue bit-exactly: the step count, the
/// learning rate, and its per-parameter buffers named "<parameter index>.<buffer>"
/// (e.g.\ "0.exp_avg", "3.momentum_buffer"). Buffers not yet created are absent.
template <class T = float>
struct OptimizerState {
  std::int64_t step = 0;
  double lr = 0.0;
  nn::ParamDict<T> buffers;
};

/// Base of the optimizers: holds the parameters (leaf tensors), the learning rate,
/// the step count and per-parameter buffers.
///
/// step(grads) updates the parameter values in place under NoGradGuard from the
/// given gradients (one per parameter, in the order of parameters(); an undefined
/// entry leaves its parameter alone); step() does the same from every parameter's
/// .grad().
template <class T = float>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = default;
  Optimizer& operator=(const Optimizer&) = default;

  /// One update from the given gradients: grads[i] is the gradient of parameters()[i]
  /// (an undefined entry skips that parameter).
  /// @throws ValueError when grads.size() differs from the number of parameters, and
  /// ShapeError naming the parameter when a gradient's shape differs from it; nothing
  /// is updated then.
  virtual void step(const std::vector<Tensor<T>>& grads) = 0;

  /// One update of every parameter that has a .grad(), from it.
  void step() {
    std::vector<Tensor<T>> grads;
    grads.reserve(params_.size());
    for (const auto& p : params_) grads.push_back(p.grad());
    step(grads);
  }

  /// Clears the .grad() of every parameter.
  void zero_grad() {
    for (auto& p : params_) p.zero_grad();
  }

  [[nodiscard]] double lr() const noexcept { return lr_; }
  /// Changes the learning rate used by the following steps.
  void set_lr(double lr) {
    METALEARN_CHECK(lr >= 0.0 && std::isfinite(lr), ValueError, name_,
                    "::set_lr: invalid learning rate ", lr);
    lr_ = lr;
  }
  /// Number of step() calls so far (restored by load_state()).
  [[nodiscard]] std::int64_t step_count() const noexcept { return step_; }
  [[nodiscard]] const std::vector<Tensor<T>>& parameters() const noexcept { return params_; }

  /// A deep copy of the optimizer's state.
  [[nodiscard]] OptimizerState<T> state() const {
    OptimizerState<T> s;
    s.step = step_;
    s.lr = lr_;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      for (std::size_t k = 0; k < buffer_names_.size(); ++k) {
        const Tensor<T>& b = buffers_[i][k];
        if (b.defined()) s.buffers.insert(std::to_string(i) + "." + buffer_names_[k], b.clone());
      }
    }
    return s;
  }

  /// Restores a state saved by state() of an optimizer of the same kind over
  /// parameters of the same shapes. Throws ValueError / ShapeError naming the
  /// offending buffer otherwise.
  void load_state(const OptimizerState<T>& s) {
    METALEARN_CHECK(s.step >= 0 && s.lr >= 0.0 && std::isfinite(s.lr), ValueError, name_,
                    "::load_state: invalid step ", s.step, " or learning rate ", s.lr);
    std::size_t used = 0;
    std::vector<std::vector<Tensor<T>>> loaded(params_.size(),
                                               std::vector<Tensor<T>>(buffer_names_.size()));
    for (std::size_t i = 0; i < params_.size(); ++i) {
      for (std::size_t k = 0; k < buffer_names_.size(); ++k) {
        const std::string key = std::to_string(i) + "." + buffer_names_[k];
        const Tensor<T>* b = s.buffers.find(key);
        if (b == nullptr) continue;
        METALEARN_CHECK(b->shape() == params_[i].shape(), ShapeError, name_,
                        "::load_state: buffer '", key, "' has shape ", b->shape(),
                        " but parameter ", i, " has shape ", params_[i].shape());
        loaded[i][k] = b->clone();
        ++used;
      }
    }
    METALEARN_CHECK(used == s.buffers.size(), ValueError, name_,
                    "::load_state: ", s.buffers.size() - used,
                    " buffer(s) do not belong to this optimizer (state of another optimizer "
                    "or of other parameters?)");
    buffers_ = std::move(loaded);
    step_ = s.step;
    lr_ = s.lr;
  }

 protected:
  /// @param params       leaf tensors to optimise
  /// @param lr           learning rate
  /// @param name         type name for messages ("SGD")
  /// @param buffer_names names of the per-parameter buffers
  Optimizer(std::vector<Tensor<T>> params, double lr, const char* name,
            std::vector<std::string> buffer_names)
      : params_(std::move(params)),
        lr_(lr),
        name_(name),
        buffer_names_(std::move(buffer_names)),
        buffers_(params_.size(), std::vector<Tensor<T>>(buffer_names_.size())) {
    METALEARN_CHECK(lr >= 0.0 && std::isfinite(lr), ValueError, name_, ": invalid learning rate ",
                    lr);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      METALEARN_CHECK(params_[i].defined() && params_[i].is_leaf(), ValueError, name_,
                      ": parameter ", i,
                      " is not a leaf tensor (optimizers update leaves in place)");
    }
  }

  /// Buffer k of parameter i (undefined until created).
  [[nodiscard]] Tensor<T>& buffer(std::size_t i, std::size_t k) { return buffers_[i][k]; }
  [[nodiscard]] const char* name() const noexcept { return name_; }
  /// The checks of step(grads), before anything changes.
  void check_gradients(const std::vector<Tensor<T>>& grads) const {
    METALEARN_CHECK(grads.size() == params_.size(), ValueError, name_, "::step: ", grads.size(),
                    " gradient(s) for ", params_.size(), " parameter(s)");
    for (std::size_t i = 0; i < grads.size(); ++i) {
      METALEARN_CHECK(!grads[i].defined() || grads[i].shape() == params_[i].shape(), ShapeError,
                      name_, "::step: gradient ", grads[i].shape(), " of parameter ", i,
                      " does not match its shape ", params_[i].shape());
    }
  }
  /// Counts a step and records the in-place write to every parameter (see
  /// Tensor::version()).
  void count_step() noexcept {
    ++step_;
    for (const auto& p : params_) p.bump_version();
  }

 private:
  std::vector<Tensor<T>> params_;
  double lr_;
  std::int64_t step_ = 0;
  const char* name_;
  std::vector<std::string> buffer_names_;
  std::vector<std::vector<Tensor<T>>> buffers_;
};

}  // namespace metalearn::optim
