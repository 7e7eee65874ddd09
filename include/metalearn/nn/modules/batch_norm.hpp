#pragma once
/// @file
/// BatchNorm1d / BatchNorm2d with an explicit statistics mode.
// SPDX-License-Identifier: MIT

#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>

#include "metalearn/core/export.hpp"
#include "metalearn/nn/forward_context.hpp"
#include "metalearn/nn/functional.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/tensor/factory.hpp"

namespace metalearn::nn {

/// Where batch normalisation takes its statistics from.
enum class BatchNormMode {
  /// Always the statistics of the current batch, in training and evaluation alike;
  /// no running statistics exist. This is the MAML reference behaviour (each task's
  /// support set and query set are normalised by their own statistics). Thread-safe.
  kTransductive,
  /// Like torch.nn.BatchNorm: while training (Module::train()) the batch statistics
  /// normalise and update the running statistics (buffers `running_mean`,
  /// `running_var`); in evaluation (Module::eval()) the running statistics normalise.
  kRunning,
  /// MAML++ per-step batch norm: `weight`, `bias`, `running_mean` and `running_var`
  /// have one row per inner-loop step ([steps, C]); step k (the forward context's
  /// step, set with nn::ForwardScope) uses row k, with the training/evaluation
  /// behaviour of kRunning. A forward pass without a step throws.
  kPerStep,
};

/// Options of BatchNorm1d / BatchNorm2d:
/// `BatchNormOptions{.mode = BatchNormMode::kPerStep, .steps = 5}`.
struct BatchNormOptions {
  BatchNormMode mode = BatchNormMode::kTransductive;
  /// Weight of the batch statistics in the running statistics' update.
  double momentum = 0.1;
  double eps = 1e-5;
  /// Learnable per-channel scale and shift (weight initialised to 1, bias to 0).
  bool affine = true;
  /// Number of inner-loop steps for BatchNormMode::kPerStep.
  int steps = 1;
};

namespace detail {

/// Row `row` of a [rows, C] tensor as a [C] tensor sharing its storage.
template <class T>
Tensor<T> row_view(const Tensor<T>& t, Index row) {
  const Index c = t.shape()[1];
  return Tensor<T>::from_storage(std::shared_ptr<T[]>(t.storage(), t.data() + row * c), Shape{c});
}

/// The shared implementation of BatchNorm1d (MinDim 2, MaxDim 3) and BatchNorm2d (4, 4).
template <class Derived, class T, Index MinDim, Index MaxDim>
class BatchNormBase : public Cloneable<Derived, T> {
 public:
  using Module<T>::forward;

  BatchNormBase(Index features, BatchNormOptions options) : features_(features), options_(options) {
    METALEARN_CHECK(features > 0, ValueError, "BatchNorm: feature count ", features,
                    " must be positive");
    METALEARN_CHECK(options.steps >= 1, ValueError, "BatchNorm: steps ", options.steps,
                    " must be >= 1");
    METALEARN_CHECK(options.momentum >= 0.0 && options.momentum <= 1.0 && options.eps > 0.0,
                    ValueError, "BatchNorm: momentum ", options.momentum,
                    " must be in [0, 1] and eps ", options.eps, " positive");
    const bool per_step = options.mode == BatchNormMode::kPerStep;
    const Shape shape = per_step ? Shape{options.steps, features} : Shape{features};
    if (options.affine) {
      this->register_parameter("weight", ones<T>(shape));
      this->register_parameter("bias", zeros<T>(shape));
    }
    if (options.mode != BatchNormMode::kTransductive) {
      this->register_buffer("running_mean", zeros<T>(shape));
      this->register_buffer("running_var", ones<T>(shape));
    }
  }

  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>& params) const override {
    METALEARN_CHECK(x.dim() >= MinDim && x.dim() <= MaxDim && x.shape()[1] == features_, ShapeError,
                    type_name(), "::forward: expected ",
                    MinDim == 4 ? "[N, C, H, W]" : "[N, C] or [N, C, L]", " with C = ", features_,
                    ", got ", x.shape());
    const T momentum = static_cast<T>(options_.momentum);
    const T eps = static_cast<T>(options_.eps);
    Tensor<T> w, b;
    if (options_.affine) {
      w = this->param(params, 0);
      b = this->param(params, 1);
    }
    switch (options_.mode) {
      case BatchNormMode::kTransductive:
        return functional::batch_norm(x, w, b, Tensor<T>(), Tensor<T>(), true, momentum, eps);
      case BatchNormMode::kRunning: {
        const bool training = this->is_training();
        std::unique_lock<std::mutex> lock(*stats_mutex_, std::defer_lock);
        if (training) lock.lock();
        return functional::batch_norm(x, w, b, this->buffer(0), this->buffer(1), training, momentum,
                                      eps);
      }
      case BatchNormMode::kPerStep: {
        const std::optional<int> step = forward_context().step;
        METALEARN_CHECK(step.has_value(), ValueError, type_name(),
                        "::forward: per-step batch norm needs the inner-loop step (run the "
                        "forward pass inside an nn::ForwardScope({.step = k}))");
        const int s = *step;
        METALEARN_CHECK(s >= 0 && s < options_.steps, ValueError, type_name(),
                        "::forward: per-step batch norm has ", options_.steps, " steps [0, ",
                        options_.steps, "), the forward context's step is ", s);
        if (options_.affine) {
          w = reshape(slice(w, 0, s, s + 1), std::vector<Index>{features_});
          b = reshape(slice(b, 0, s, s + 1), std::vector<Index>{features_});
        }
        const bool training = this->is_training();
        std::unique_lock<std::mutex> lock(*stats_mutex_, std::defer_lock);
        if (training) lock.lock();
        return functional::batch_norm(x, w, b, row_view(this->buffer(0), s),
                                      row_view(this->buffer(1), s), training, momentum, eps);
      }
    }
    return x;
  }

  [[nodiscard]] std::string type_name() const override {
    return MinDim == 4 ? "BatchNorm2d" : "BatchNorm1d";
  }
  [[nodiscard]] std::string extra_repr() const override {
    std::ostringstream os;
    os << features_ << ", mode="
       << (options_.mode == BatchNormMode::kTransductive
               ? "transductive"
               : (options_.mode == BatchNormMode::kRunning ? "running" : "per_step"));
    if (options_.mode == BatchNormMode::kPerStep) os << ", steps=" << options_.steps;
    os << ", momentum=" << options_.momentum << ", eps=" << options_.eps
       << ", affine=" << (options_.affine ? "true" : "false");
    return os.str();
  }

  [[nodiscard]] Index num_features() const noexcept { return features_; }
  [[nodiscard]] const BatchNormOptions& options() const noexcept { return options_; }
  /// Running statistics (undefined in transductive mode); [C] or [steps, C].
  [[nodiscard]] Tensor<T> running_mean() const {
    return options_.mode == BatchNormMode::kTransductive ? Tensor<T>() : this->buffer(0);
  }
  [[nodiscard]] Tensor<T> running_var() const {
    return options_.mode == BatchNormMode::kTransductive ? Tensor<T>() : this->buffer(1);
  }

 private:
  Index features_;
  BatchNormOptions options_;
  // Serialises in-place updates of the running statistics between threads.
  std::shared_ptr<std::mutex> stats_mutex_ = std::make_shared<std::mutex>();
};

}  // namespace detail

/// Batch normalisation of [N, C] or [N, C, L] inputs over N (and L).
/// See BatchNormMode for the statistics modes.
template <class T = float>
class METALEARN_API BatchNorm1d : public detail::BatchNormBase<BatchNorm1d<T>, T, 2, 3> {
 public:
  explicit BatchNorm1d(Index features, BatchNormOptions options = {})
      : detail::BatchNormBase<BatchNorm1d<T>, T, 2, 3>(features, options) {}
};

/// Batch normalisation of [N, C, H, W] inputs over N, H and W.
/// See BatchNormMode for the statistics modes.
template <class T = float>
class METALEARN_API BatchNorm2d : public detail::BatchNormBase<BatchNorm2d<T>, T, 4, 4> {
 public:
  explicit BatchNorm2d(Index features, BatchNormOptions options = {})
      : detail::BatchNormBase<BatchNorm2d<T>, T, 4, 4>(features, options) {}
};

extern template class BatchNorm1d<float>;
extern template class BatchNorm1d<double>;
extern template class BatchNorm2d<float>;
extern template class BatchNorm2d<double>;

}  // namespace metalearn::nn
