#pragma once
/// @file
/// The forward context: what a forward pass belongs to beyond its input and
/// parameters. Today that is the inner-loop step, which per-step batch normalisation
/// (BatchNormMode::kPerStep, MAML++) uses to pick its statistics and affine row.
///
/// @code
///   {
///     nn::ForwardScope scope({.step = k});  // this thread's forward passes are step k
///     y = model.forward(x, fast_weights);
///   }                                       // the previous context again
/// @endcode
///
/// The context belongs to the calling thread, set and restored by a scope like grad
/// mode's guards: tasks on other threads set their own, and parameters carry none.

#include <optional>

#include "metalearn/core/export.hpp"

namespace metalearn::nn {

/// What the forward passes of a thread belong to.
struct ForwardContext {
  /// The inner-loop step (0 for the support pass before any update, k after k
  /// updates); empty outside an inner loop.
  std::optional<int> step{};
};

/// This thread's forward context (empty when no ForwardScope is alive).
[[nodiscard]] METALEARN_API const ForwardContext& forward_context() noexcept;

/// Makes `context` this thread's forward context for the scope's lifetime; the
/// previous one comes back when it ends (scopes nest).
class METALEARN_API ForwardScope {
 public:
  explicit ForwardScope(const ForwardContext& context) noexcept;
  ~ForwardScope();
  ForwardScope(const ForwardScope&) = delete;
  ForwardScope& operator=(const ForwardScope&) = delete;

 private:
  ForwardContext previous_;
};

}  // namespace metalearn::nn
