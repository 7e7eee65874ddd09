// Finite-horizon dynamic programming.

#include "metalearn/env/planning.hpp"

#include <algorithm>

#include "metalearn/core/error.hpp"

namespace metalearn::env {

std::vector<double> finite_horizon_q(std::span<const double> reward_means,
                                     std::span<const double> transitions, Index states,
                                     Index actions, Index horizon) {
  METALEARN_CHECK(states >= 1 && actions >= 1 && horizon >= 1, ValueError,
                  "finite_horizon_q: sizes must be >= 1, got states=", states, " actions=", actions,
                  " horizon=", horizon);
  const auto S = static_cast<std::size_t>(states);
  const auto A = static_cast<std::size_t>(actions);
  const auto H = static_cast<std::size_t>(horizon);
  METALEARN_CHECK(reward_means.size() == S * A && transitions.size() == S * A * S, ValueError,
                  "finite_horizon_q: expected ", S * A, " mean rewards and ", S * A * S,
                  " transition probabilities for ", S, " states and ", A, " actions, got ",
                  reward_means.size(), " and ", transitions.size());
  std::vector<double> q(H * S * A, 0.0);
  std::vector<double> next_v(S, 0.0);  // V_{t+1}
  std::vector<double> v(S, 0.0);
  for (std::size_t step = 0; step < H; ++step) {
    const std::size_t t = H - 1 - step;
    for (std::size_t s = 0; s < S; ++s) {
      double best = 0.0;
      for (std::size_t a = 0; a < A; ++a) {
        const std::size_t sa = s * A + a;
        const double* row = transitions.data() + sa * S;
        double expected = 0.0;
        for (std::size_t j = 0; j < S; ++j) expected += row[j] * next_v[j];
        const double value = reward_means[sa] + expected;
        q[(t * S + s) * A + a] = value;
        best = a == 0 ? value : std::max(best, value);
      }
      v[s] = best;
    }
    std::swap(v, next_v);
  }
  return q;
}

}  // namespace metalearn::env
