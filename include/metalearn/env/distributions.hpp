#pragma once
/// @file
/// The draws the environment families and the Bayesian agents need beyond Generator's
/// uniform and normal: gamma, beta, Dirichlet and categorical. Each uses the given
/// generator only, in a fixed order, so a draw is a pure function of the generator.

#include <span>
#include <vector>

#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/shape.hpp"

namespace metalearn::env {

/// Gamma(shape, 1) (Marsaglia and Tsang 2000; shape < 1 through Gamma(shape + 1) *
/// U^(1/shape)). Throws ValueError unless shape > 0 and finite.
[[nodiscard]] METALEARN_API double sample_gamma(Generator& gen, double shape);

/// Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b). Throws ValueError unless
/// a > 0 and b > 0.
[[nodiscard]] METALEARN_API double sample_beta(Generator& gen, double a, double b);

/// Dirichlet(alpha) into `out` (same size as alpha): normalised Gamma(alpha_j) draws.
/// Throws ValueError for sizes that differ, an empty alpha or an alpha_j <= 0.
METALEARN_API void sample_dirichlet(Generator& gen, std::span<const double> alpha,
                                    std::span<double> out);

/// An index j drawn with probability probabilities[j] (one uniform draw; the first j
/// whose cumulative probability exceeds it, the last positive one when rounding leaves
/// the sum just below 1). Throws ValueError for an empty span.
[[nodiscard]] METALEARN_API Index sample_categorical(Generator& gen,
                                                     std::span<const double> probabilities);

}  // namespace metalearn::env
