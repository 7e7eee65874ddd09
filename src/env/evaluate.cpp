// Score: mean and 95% interval of per-trial returns.

#include "metalearn/env/evaluate.hpp"

#include <cmath>
#include <utility>

namespace metalearn::env {

Score Score::from_returns(std::vector<double> returns) {
  Score s;
  s.trials = static_cast<Index>(returns.size());
  if (!returns.empty()) {
    double sum = 0.0;
    for (double r : returns) sum += r;
    s.mean = sum / static_cast<double>(returns.size());
    if (returns.size() > 1) {
      double ss = 0.0;
      for (double r : returns) ss += (r - s.mean) * (r - s.mean);
      const double sd = std::sqrt(ss / static_cast<double>(returns.size() - 1));
      s.ci95 = 1.96 * sd / std::sqrt(static_cast<double>(returns.size()));
    }
  }
  s.returns = std::move(returns);
  return s;
}

}  // namespace metalearn::env
