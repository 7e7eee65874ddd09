#pragma once
/// @file
/// Learning-rate schedules: small classes giving lr(step).
// SPDX-License-Identifier: MIT

#include <cmath>
#include <cstdint>
#include <numbers>

#include "metalearn/core/error.hpp"
#include "metalearn/optim/optimizer.hpp"

namespace metalearn::optim {

/// A learning rate as a function of the step index (0 for the first step).
class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  [[nodiscard]] virtual double lr(std::int64_t step) const = 0;
  [[nodiscard]] double operator()(std::int64_t step) const { return lr(step); }
};

/// The same learning rate at every step.
class ConstantLr final : public LrSchedule {
 public:
  explicit ConstantLr(double lr) : lr_(lr) {
    METALEARN_CHECK(lr >= 0.0, ValueError, "ConstantLr: negative learning rate ", lr);
  }
  [[nodiscard]] double lr(std::int64_t) const override { return lr_; }

 private:
  double lr_;
};

/// base * gamma^floor(step / step_size): decays by `gamma` every `step_size` steps.
class StepLr final : public LrSchedule {
 public:
  StepLr(double base, std::int64_t step_size, double gamma = 0.1)
      : base_(base), step_size_(step_size), gamma_(gamma) {
    METALEARN_CHECK(base >= 0.0 && step_size > 0 && gamma >= 0.0, ValueError, "StepLr: base ", base,
                    ", step_size ", step_size, " and gamma ", gamma,
                    " must be non-negative (step_size positive)");
  }
  [[nodiscard]] double lr(std::int64_t step) const override {
    METALEARN_CHECK(step >= 0, ValueError, "StepLr::lr: negative step ", step);
    return base_ * std::pow(gamma_, static_cast<double>(step / step_size_));
  }

 private:
  double base_;
  std::int64_t step_size_;
  double gamma_;
};

/// Cosine annealing from `base` at step 0 to `min_lr` at step `total_steps`
/// (and after): min + (base - min) * (1 + cos(pi * step / total)) / 2.
class CosineLr final : public LrSchedule {
 public:
  CosineLr(double base, std::int64_t total_steps, double min_lr = 0.0)
      : base_(base), total_(total_steps), min_(min_lr) {
    METALEARN_CHECK(base >= 0.0 && min_lr >= 0.0 && total_steps > 0, ValueError, "CosineLr: base ",
                    base, " and min_lr ", min_lr, " must be non-negative and total_steps ",
                    total_steps, " positive");
  }
  [[nodiscard]] double lr(std::int64_t step) const override {
    METALEARN_CHECK(step >= 0, ValueError, "CosineLr::lr: negative step ", step);
    if (step >= total_) return min_;
    const double f = static_cast<double>(step) / static_cast<double>(total_);
    return min_ + (base_ - min_) * 0.5 * (1.0 + std::cos(std::numbers::pi * f));
  }

 private:
  double base_;
  std::int64_t total_;
  double min_;
};

/// Sets the optimizer's learning rate for its next step from the schedule:
/// `apply_schedule(opt, sched); opt.step();`.
template <class T>
void apply_schedule(Optimizer<T>& optimizer, const LrSchedule& schedule) {
  optimizer.set_lr(schedule.lr(optimizer.step_count()));
}

}  // namespace metalearn::optim
