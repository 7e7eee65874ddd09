#pragma once
/// @file
/// Finite-horizon dynamic programming on a tabular model, as the model-based agents
/// (PSRL, certainty-equivalent planning) and TabularMdp::optimal_episode_value use it.

#include <span>
#include <vector>

#include "metalearn/core/export.hpp"
#include "metalearn/core/shape.hpp"

namespace metalearn::env {

/// Q-values of a finite-horizon tabular model by backward induction:
/// Q_t(s, a) = R(s, a) + sum_s' P(s' | s, a) V_{t+1}(s'), V_t(s) = max_a Q_t(s, a),
/// V_horizon = 0, for t = horizon - 1, ..., 0.
///
/// `reward_means` is [states * actions] and `transitions` [states * actions * states],
/// row-major as in TabularMdp. The result is [horizon * states * actions] with Q_t(s, a)
/// at (t * states + s) * actions + a. Throws ValueError for sizes < 1 or spans whose
/// sizes do not fit.
[[nodiscard]] METALEARN_API std::vector<double> finite_horizon_q(
    std::span<const double> reward_means, std::span<const double> transitions, Index states,
    Index actions, Index horizon);

}  // namespace metalearn::env
