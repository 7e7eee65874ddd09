#pragma once
/// @file
/// GaussianProcessTasks<T>: 1-D functions drawn from a GP prior, for encoder-decoder learners.

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "metalearn/core/eigen.hpp"

#include "metalearn/core/error.hpp"
#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::data {

/// Options of the Gaussian-process family (designated-initializer friendly).
/// The covariance function of GaussianProcessTasks, of d = |x - x'|, with l the length
/// scale, s the signal scale and p the period.
enum class GpKernel {
  kEq,        ///< exponentiated quadratic (RBF): s^2 exp(-d^2 / (2 l^2))
  kMatern52,  ///< Matern 5/2: s^2 (1 + r + r^2 / 3) exp(-r), r = sqrt(5) d / l
  kPeriodic,  ///< periodic: s^2 exp(-2 sin^2(pi d / p) / l^2)
};

/// The value of `kernel` at distance `d` >= 0.
inline double gp_kernel_value(GpKernel kernel, double d, double length_scale, double signal_scale,
                              double period) {
  const double s2 = signal_scale * signal_scale;
  switch (kernel) {
    case GpKernel::kMatern52: {
      const double r = std::sqrt(5.0) * d / length_scale;
      return s2 * (1.0 + r + r * r / 3.0) * std::exp(-r);
    }
    case GpKernel::kPeriodic: {
      const double sn = std::sin(std::numbers::pi * d / period);
      return s2 * std::exp(-2.0 * sn * sn / (length_scale * length_scale));
    }
    case GpKernel::kEq:
      break;
  }
  return s2 * std::exp(-d * d / (2.0 * length_scale * length_scale));
}

struct GaussianProcessOptions {
  /// The covariance function (GpKernel).
  GpKernel kernel = GpKernel::kEq;
  /// The kernel's length scale and signal scale (the smallest ones when drawn per task).
  double length_scale = 0.4;
  double signal_scale = 1.0;
  /// Kernel parameters drawn per task (the ANP protocol: length scale from [0.1, 0.6),
  /// signal scale from [0.1, 1.0)): when length_scale_max > length_scale, each task
  /// draws its length scale uniformly from [length_scale, length_scale_max); likewise the
  /// signal scale with signal_scale_max. 0: fixed.
  double length_scale_max = 0.0;
  double signal_scale_max = 0.0;
  /// The period of GpKernel::kPeriodic.
  double period = 1.0;
  /// Standard deviation of observation noise added to the targets (0: noiseless).
  double noise_std = 0.0;
  /// Number of context (support) points: uniform in [min_context, max_context].
  Index min_context = 3;
  Index max_context = 50;
  /// Number of target (query) points: uniform in [min_target, max_target].
  Index min_target = 3;
  Index max_target = 50;
  double x_min = -2.0;
  double x_max = 2.0;
  /// Added to the kernel diagonal before the Cholesky factorisation; multiplied by 10
  /// (up to 6 times) when the factorisation fails.
  double jitter = 1e-6;
  /// When true the query set is the context points followed by the target points (the
  /// usual conditional neural process training setup); otherwise it holds only the
  /// target points.
  bool targets_include_context = false;
};

/// Regression tasks whose function is a sample of a zero-mean GP (EQ, Matern 5/2 or
/// periodic kernel, with fixed parameters or parameters drawn per task).
///
/// Each task draws the number of context points C and target points M, then its kernel
/// parameters when they are drawn per task (length scale, then signal scale), draws C + M
/// inputs x ~ U[x_min, x_max), and samples f = L z at those inputs (L the Cholesky factor
/// of the kernel matrix plus jitter, computed in double with Eigen, z standard normal).
/// The first C points are the support set, the others the query set. Shapes are [n, 1];
/// ways = 1, shots = C and queries = number of query points (these vary between tasks).
/// Params: "length_scale", "signal_scale" (the task's own). Cost O((C + M)^3) per task.
template <class T>
class METALEARN_API GaussianProcessTasks {
 public:
  using value_type = T;

  /// Throws ValueError for non-positive scales or inconsistent counts/ranges.
  explicit GaussianProcessTasks(GaussianProcessOptions options = {}) : options_(options) {
    const auto& o = options_;
    METALEARN_CHECK(o.length_scale > 0.0 && o.signal_scale > 0.0, ValueError,
                    "GaussianProcessTasks: length_scale and signal_scale must be > 0, got ",
                    o.length_scale, " and ", o.signal_scale);
    METALEARN_CHECK(o.length_scale_max == 0.0 || o.length_scale_max >= o.length_scale, ValueError,
                    "GaussianProcessTasks: length_scale_max must be 0 (fixed) or >= "
                    "length_scale (",
                    o.length_scale, "), got ", o.length_scale_max);
    METALEARN_CHECK(o.signal_scale_max == 0.0 || o.signal_scale_max >= o.signal_scale, ValueError,
                    "GaussianProcessTasks: signal_scale_max must be 0 (fixed) or >= "
                    "signal_scale (",
                    o.signal_scale, "), got ", o.signal_scale_max);
    METALEARN_CHECK(o.period > 0.0, ValueError, "GaussianProcessTasks: period must be > 0, got ",
                    o.period);
    METALEARN_CHECK(o.kernel == GpKernel::kEq || o.kernel == GpKernel::kMatern52 ||
                        o.kernel == GpKernel::kPeriodic,
                    ValueError, "GaussianProcessTasks: unknown kernel ",
                    static_cast<int>(o.kernel));
    METALEARN_CHECK(o.min_context >= 0 && o.min_context <= o.max_context, ValueError,
                    "GaussianProcessTasks: need 0 <= min_context <= max_context, got ",
                    o.min_context, " and ", o.max_context);
    METALEARN_CHECK(o.min_target >= 0 && o.min_target <= o.max_target, ValueError,
                    "GaussianProcessTasks: need 0 <= min_target <= max_target, got ", o.min_target,
                    " and ", o.max_target);
    METALEARN_CHECK(o.x_min <= o.x_max, ValueError, "GaussianProcessTasks: inverted x range [",
                    o.x_min, ", ", o.x_max, "]");
    METALEARN_CHECK(o.noise_std >= 0.0 && o.jitter >= 0.0, ValueError,
                    "GaussianProcessTasks: noise_std and jitter must be >= 0, got ", o.noise_std,
                    " and ", o.jitter);
  }

  /// Draws one task from `gen`. Throws ValueError if the kernel matrix cannot be factorised.
  [[nodiscard]] Task<T> sample(Generator& gen) const {
    const auto& o = options_;
    const Index nc = gen.randint(o.min_context, o.max_context);
    const Index nt = gen.randint(o.min_target, o.max_target);
    const Index n = nc + nt;
    // Fixed parameters draw nothing, so a fixed family's stream is unchanged by these.
    const double length = o.length_scale_max > o.length_scale
                              ? gen.uniform(o.length_scale, o.length_scale_max)
                              : o.length_scale;
    const double signal = o.signal_scale_max > o.signal_scale
                              ? gen.uniform(o.signal_scale, o.signal_scale_max)
                              : o.signal_scale;
    Eigen::VectorXd x(n);
    for (Index i = 0; i < n; ++i) x[i] = gen.uniform(o.x_min, o.x_max);
    Eigen::MatrixXd k(n, n);
    for (Index i = 0; i < n; ++i) {
      for (Index j = 0; j <= i; ++j) {
        k(i, j) = k(j, i) =
            gp_kernel_value(o.kernel, std::abs(x[i] - x[j]), length, signal, o.period);
      }
    }
    Eigen::VectorXd z(n);
    for (Index i = 0; i < n; ++i) z[i] = gen.normal();
    Eigen::VectorXd f = factor(k) * z;
    if (o.noise_std > 0.0) {
      for (Index i = 0; i < n; ++i) f[i] += gen.normal(0.0, o.noise_std);
    }

    Task<T> task;
    task.ways = 1;
    task.shots = nc;
    task.params = {{"length_scale", length}, {"signal_scale", signal}};
    const Index q0 = o.targets_include_context ? 0 : nc;
    task.queries = n - q0;
    auto fill = [&](Index begin, Index end, Tensor<T>& tx, Tensor<T>& ty) {
      tx = Tensor<T>::empty(Shape{end - begin, 1});
      ty = Tensor<T>::empty(Shape{end - begin, 1});
      for (Index i = begin; i < end; ++i) {
        tx.data()[i - begin] = static_cast<T>(x[i]);
        ty.data()[i - begin] = static_cast<T>(f[i]);
      }
    };
    fill(0, nc, task.support_x, task.support_y);
    fill(q0, n, task.query_x, task.query_y);
    return task;
  }

  /// The exact GP's predictive log-likelihood per point of `task`'s query set given
  /// its support set, under this family's kernel (with the task's own parameters, its
  /// params "length_scale" and "signal_scale", when it has them) and noise: the mean over
  /// query points of log N(y; m(x), v(x) + noise^2), m and v the GP posterior mean and
  /// variance. No model of this family does better on average (the oracle bound of a
  /// Neural Process evaluated per point over the same targets).
  /// @throws ShapeError unless the task's sets are [n, 1] with a non-empty query set.
  [[nodiscard]] double oracle_log_likelihood(const Task<T>& task) const {
    const char* f = "GaussianProcessTasks::oracle_log_likelihood";
    METALEARN_CHECK(
        task.query_x.defined() && task.query_x.dim() == 2 && task.query_x.shape()[1] == 1 &&
            task.query_x.shape()[0] > 0 && task.query_y.defined() && task.query_y.dim() == 2 &&
            task.query_y.shape()[1] == 1 && task.query_y.shape()[0] == task.query_x.shape()[0],
        ShapeError, f, ": query_x and query_y of shapes ",
        task.query_x.defined() ? task.query_x.shape() : Shape{}, " and ",
        task.query_y.defined() ? task.query_y.shape() : Shape{}, "; expected [n, 1] with n >= 1");
    const Index m = task.query_x.shape()[0];
    std::vector<double> x(static_cast<std::size_t>(m));
    for (Index t = 0; t < m; ++t) x[static_cast<std::size_t>(t)] = task.query_x.data()[t];
    const OraclePredictive p = predictive(task, x, f);
    double total = 0.0;
    for (Index t = 0; t < m; ++t) {
      const auto i = static_cast<std::size_t>(t);
      const double r = static_cast<double>(task.query_y.data()[t]) - p.mean[i];
      total +=
          -0.5 * std::log(2.0 * std::numbers::pi * p.variance[i]) - 0.5 * r * r / p.variance[i];
    }
    return total / static_cast<double>(m);
  }

  /// The exact GP's predictive mean and variance (observation noise included).
  struct OraclePredictive {
    std::vector<double> mean, variance;
  };

  /// The exact GP's posterior predictive at inputs `x` given `task`'s support set, under
  /// the kernel and parameters oracle_log_likelihood() uses: what a Neural Process's
  /// predictive is measured against (its mean and two-sigma band beside the model's).
  /// @throws ShapeError unless the support set is [n, 1].
  [[nodiscard]] OraclePredictive oracle_predictive(const Task<T>& task,
                                                   const std::vector<double>& x) const {
    return predictive(task, x, "GaussianProcessTasks::oracle_predictive");
  }

  [[nodiscard]] const GaussianProcessOptions& options() const { return options_; }

 private:
  [[nodiscard]] Eigen::MatrixXd factor(const Eigen::MatrixXd& k) const {
    const Index n = k.rows();
    double jitter = options_.jitter;
    for (int attempt = 0; attempt < 7; ++attempt) {
      Eigen::MatrixXd kj = k;
      kj.diagonal().array() += jitter;
      Eigen::LLT<Eigen::MatrixXd> llt(kj);
      if (llt.info() == Eigen::Success) return llt.matrixL();
      jitter = jitter > 0.0 ? jitter * 10.0 : 1e-10;
    }
    ::metalearn::detail::throw_error<ValueError>(
        "GaussianProcessTasks::sample: the ", n, "x", n,
        " kernel matrix is not positive definite even with jitter ", jitter);
  }

  [[nodiscard]] OraclePredictive predictive(const Task<T>& task, const std::vector<double>& x,
                                            const char* f) const {
    const auto column = [&](const Tensor<T>& t, const char* what) {
      METALEARN_CHECK(t.defined() && t.dim() == 2 && t.shape()[1] == 1, ShapeError, f, ": ", what,
                      " of shape ", t.defined() ? t.shape() : Shape{}, "; expected [n, 1]");
    };
    column(task.support_x, "support_x");
    column(task.support_y, "support_y");
    METALEARN_CHECK(task.support_y.shape()[0] == task.support_x.shape()[0], ShapeError, f,
                    ": support_x ", task.support_x.shape(), " and support_y ",
                    task.support_y.shape(), " differ in length");
    const auto& o = options_;
    const auto param = [&](const char* name, double fallback) {
      const auto it = task.params.find(name);
      return it != task.params.end() ? it->second : fallback;
    };
    const double length = param("length_scale", o.length_scale);
    const double signal = param("signal_scale", o.signal_scale);
    const double s2 = signal * signal;
    const double noise2 = o.noise_std * o.noise_std;
    const auto kernel = [&](double a, double b) {
      return gp_kernel_value(o.kernel, std::abs(a - b), length, signal, o.period);
    };
    const Index c = task.support_x.shape()[0];
    Eigen::MatrixXd k(c, c);
    Eigen::VectorXd yc(c);
    for (Index i = 0; i < c; ++i) {
      yc[i] = static_cast<double>(task.support_y.data()[i]);
      for (Index j = 0; j <= i; ++j) {
        k(i, j) = k(j, i) = kernel(task.support_x.data()[i], task.support_x.data()[j]);
      }
    }
    k.diagonal().array() += noise2 + o.jitter;
    const Eigen::LLT<Eigen::MatrixXd> llt(k);
    METALEARN_CHECK(c == 0 || llt.info() == Eigen::Success, ValueError, f, ": the ", c, "x", c,
                    " context kernel matrix is not positive definite");
    const Eigen::VectorXd alpha = c > 0 ? Eigen::VectorXd(llt.solve(yc)) : Eigen::VectorXd();
    OraclePredictive out;
    out.mean.reserve(x.size());
    out.variance.reserve(x.size());
    for (const double xs : x) {
      Eigen::VectorXd ks(c);
      for (Index i = 0; i < c; ++i) ks[i] = kernel(xs, task.support_x.data()[i]);
      const double reduced = c > 0 ? ks.dot(llt.solve(ks)) : 0.0;
      out.mean.push_back(c > 0 ? ks.dot(alpha) : 0.0);
      out.variance.push_back(std::max(s2 - reduced, 0.0) + noise2 + o.jitter);
    }
    return out;
  }

  GaussianProcessOptions options_;
};

}  // namespace metalearn::data
