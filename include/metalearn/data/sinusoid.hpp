#pragma once
/// @file
/// SinusoidTasks<T>: the sinusoid regression family of Finn et al.\ (2017).

#include <cmath>
#include <numbers>

#include "metalearn/core/error.hpp"
#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::data {

/// Ranges of the sinusoid family. Defaults are those of Finn et al. (2017).
struct SinusoidOptions {
  /// Support points per task (K).
  Index shots = 10;
  /// Query points per task.
  Index queries = 10;
  double amplitude_min = 0.1;
  double amplitude_max = 5.0;
  double phase_min = 0.0;
  double phase_max = std::numbers::pi;
  double x_min = -5.0;
  double x_max = 5.0;
  /// Standard deviation of Gaussian noise added to the targets (0: noiseless).
  double noise_std = 0.0;
};

/// Regression tasks y = amplitude * sin(x - phase).
///
/// Each task draws amplitude ~ U[amplitude_min, amplitude_max), phase ~ U[phase_min,
/// phase_max), then `shots` support and `queries` query inputs x ~ U[x_min, x_max).
/// support_x / query_x / support_y / query_y are [K, 1]; ways = 1; the task's params hold
/// "amplitude" and "phase" so the true curve can be plotted with SinusoidTasks::value.
///
/// @code
/// data::SinusoidTasks<float> family({.shots = 10, .queries = 10});
/// Generator gen(0);
/// auto task = family.sample(gen);
/// double a = task.param("amplitude");
/// @endcode
template <class T>
class METALEARN_API SinusoidTasks {
 public:
  using value_type = T;

  /// Throws ValueError for negative counts or empty/inverted ranges.
  explicit SinusoidTasks(SinusoidOptions options = {}) : options_(options) {
    const auto& o = options_;
    METALEARN_CHECK(o.shots >= 0 && o.queries >= 0, ValueError,
                    "SinusoidTasks: shots and queries must be >= 0, got shots=", o.shots,
                    " queries=", o.queries);
    METALEARN_CHECK(
        o.amplitude_min <= o.amplitude_max && o.phase_min <= o.phase_max && o.x_min <= o.x_max,
        ValueError, "SinusoidTasks: inverted range (amplitude [", o.amplitude_min, ", ",
        o.amplitude_max, "], phase [", o.phase_min, ", ", o.phase_max, "], x [", o.x_min, ", ",
        o.x_max, "])");
    METALEARN_CHECK(o.noise_std >= 0.0, ValueError, "SinusoidTasks: noise_std must be >= 0, got ",
                    o.noise_std);
  }

  /// Draws one task from `gen`.
  [[nodiscard]] Task<T> sample(Generator& gen) const {
    const auto& o = options_;
    const double amplitude = gen.uniform(o.amplitude_min, o.amplitude_max);
    const double phase = gen.uniform(o.phase_min, o.phase_max);
    Task<T> task;
    task.ways = 1;
    task.shots = o.shots;
    task.queries = o.queries;
    task.params = {{"amplitude", amplitude}, {"phase", phase}};
    auto fill = [&](Index n, Tensor<T>& x, Tensor<T>& y) {
      x = Tensor<T>::empty(Shape{n, 1});
      y = Tensor<T>::empty(Shape{n, 1});
      for (Index i = 0; i < n; ++i) {
        const double xi = gen.uniform(o.x_min, o.x_max);
        double yi = value(amplitude, phase, xi);
        if (o.noise_std > 0.0) yi += gen.normal(0.0, o.noise_std);
        x.data()[i] = static_cast<T>(xi);
        y.data()[i] = static_cast<T>(yi);
      }
    };
    fill(o.shots, task.support_x, task.support_y);
    fill(o.queries, task.query_x, task.query_y);
    return task;
  }

  /// The noiseless target amplitude * sin(x - phase).
  [[nodiscard]] static double value(double amplitude, double phase, double x) {
    return amplitude * std::sin(x - phase);
  }

  [[nodiscard]] const SinusoidOptions& options() const { return options_; }

 private:
  SinusoidOptions options_;
};

}  // namespace metalearn::data
