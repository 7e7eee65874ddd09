// Gamma, beta, Dirichlet and categorical draws on a Generator.

#include "metalearn/env/distributions.hpp"

#include <cmath>

#include "metalearn/core/error.hpp"

namespace metalearn::env {
namespace {

/// A uniform draw in (0, 1).
double open_uniform(Generator& gen) {
  double u = 0.0;
  do {
    u = gen.uniform();
  } while (u <= 0.0);
  return u;
}

/// Marsaglia-Tsang for shape >= 1.
double gamma_at_least_one(Generator& gen, double shape) {
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x = 0.0;
    double v = 0.0;
    do {
      x = gen.normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = open_uniform(gen);
    const double x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2) return d * v;
    if (std::log(u) < 0.5 * x2 + d * (1.0 - v + std::log(v))) return d * v;
  }
}

}  // namespace

double sample_gamma(Generator& gen, double shape) {
  METALEARN_CHECK(shape > 0.0 && std::isfinite(shape), ValueError,
                  "sample_gamma: shape must be > 0 and finite, got ", shape);
  if (shape >= 1.0) return gamma_at_least_one(gen, shape);
  const double g = gamma_at_least_one(gen, shape + 1.0);
  return g * std::pow(open_uniform(gen), 1.0 / shape);
}

double sample_beta(Generator& gen, double a, double b) {
  METALEARN_CHECK(a > 0.0 && b > 0.0, ValueError, "sample_beta: a and b must be > 0, got a=", a,
                  " b=", b);
  const double x = sample_gamma(gen, a);
  const double y = sample_gamma(gen, b);
  const double s = x + y;
  return s > 0.0 ? x / s : 0.5;  // both underflowed (tiny shapes): the symmetric middle
}

void sample_dirichlet(Generator& gen, std::span<const double> alpha, std::span<double> out) {
  METALEARN_CHECK(!alpha.empty() && alpha.size() == out.size(), ValueError,
                  "sample_dirichlet: alpha has ", alpha.size(), " entries and out ", out.size(),
                  " (both must be the same, > 0)");
  double sum = 0.0;
  for (std::size_t j = 0; j < alpha.size(); ++j) {
    METALEARN_CHECK(alpha[j] > 0.0, ValueError, "sample_dirichlet: alpha[", j,
                    "] must be > 0, got ", alpha[j]);
    out[j] = sample_gamma(gen, alpha[j]);
    sum += out[j];
  }
  if (sum > 0.0) {
    for (double& x : out) x /= sum;
    return;
  }
  // Every draw underflowed (tiny concentrations): all mass on one uniform index.
  const auto k =
      static_cast<std::size_t>(gen.randint(0, static_cast<std::int64_t>(out.size()) - 1));
  for (std::size_t j = 0; j < out.size(); ++j) out[j] = j == k ? 1.0 : 0.0;
}

Index sample_categorical(Generator& gen, std::span<const double> probabilities) {
  METALEARN_CHECK(!probabilities.empty(), ValueError,
                  "sample_categorical: no probabilities to draw from");
  const double u = gen.uniform();
  double cumulative = 0.0;
  Index last_positive = 0;
  for (std::size_t j = 0; j < probabilities.size(); ++j) {
    if (probabilities[j] > 0.0) last_positive = static_cast<Index>(j);
    cumulative += probabilities[j];
    if (u < cumulative) return static_cast<Index>(j);
  }
  return last_positive;
}

}  // namespace metalearn::env
