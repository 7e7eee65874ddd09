#pragma once
// report.html: one self-contained page of a run (or of several, overlaid) that opens
// offline: the learning curves, the evaluation metric with its 95% band, the speed
// over time, the configuration and the results, drawn by Chart.js, which the build
// inlines from Debian's libjs-chart.js (no network at any point).

#include <array>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace metalearn::cli {

/// The series a report draws for one run, read from its metrics.jsonl.
struct RunSeries {
  std::string label;  ///< the run folder's name
  std::vector<std::pair<double, double>> train_loss, train_accuracy, train_return, lr, speed;
  /// (step, mean, half-width of the 95% interval)
  std::vector<std::array<double, 3>> eval;
};

/// Reads the series of the run in `run_dir`. @throws IoError naming a line of
/// metrics.jsonl that is not JSON.
RunSeries read_series(const std::filesystem::path& run_dir);

/// Writes `out`, the report of the runs in `run_dirs` (their curves overlaid; the
/// configuration and results of each). @throws IoError naming the run or the file.
void write_report(const std::vector<std::filesystem::path>& run_dirs,
                  const std::filesystem::path& out);

/// True when the build inlined Chart.js (the report draws its charts).
bool report_has_charts();

}  // namespace metalearn::cli
