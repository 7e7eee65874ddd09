#pragma once
/// @file
/// Thread-local grad mode and anomaly mode with RAII guards. Every differentiable op
/// consults them when it decides whether to record a graph node.

#include "metalearn/core/export.hpp"

namespace metalearn::autograd {

/// True when differentiable ops record graph nodes on this thread (the default).
[[nodiscard]] METALEARN_API bool is_grad_enabled() noexcept;
METALEARN_API void set_grad_enabled(bool enabled) noexcept;

/// True when ops check their results for NaN/Inf on this thread (off by default).
[[nodiscard]] METALEARN_API bool is_anomaly_enabled() noexcept;
METALEARN_API void set_anomaly_enabled(bool enabled) noexcept;

/// Disables graph recording on this thread for the guard's lifetime.
class NoGradGuard {
 public:
  NoGradGuard() noexcept : prev_(is_grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

/// Enables graph recording on this thread for the guard's lifetime.
class EnableGradGuard {
 public:
  EnableGradGuard() noexcept : prev_(is_grad_enabled()) { set_grad_enabled(true); }
  ~EnableGradGuard() { set_grad_enabled(prev_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool prev_;
};

/// Sets grad mode to `enabled` for the guard's lifetime.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled) noexcept : prev_(is_grad_enabled()) {
    set_grad_enabled(enabled);
  }
  ~GradModeGuard() { set_grad_enabled(prev_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool prev_;
};

/// Enables anomaly detection on this thread: every op and every backward rule
/// checks its result for NaN/Inf and throws ValueError naming itself.
class AnomalyGuard {
 public:
  explicit AnomalyGuard(bool enabled = true) noexcept : prev_(is_anomaly_enabled()) {
    set_anomaly_enabled(enabled);
  }
  ~AnomalyGuard() { set_anomaly_enabled(prev_); }
  AnomalyGuard(const AnomalyGuard&) = delete;
  AnomalyGuard& operator=(const AnomalyGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace metalearn::autograd
