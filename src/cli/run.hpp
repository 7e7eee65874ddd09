#pragma once
// The `metalearn` command's runs: a RunConfig (algorithm, task family, their settings,
// the algorithm's options) that a run folder keeps as config.json, and the commands
// that train, resume, evaluate and inspect. main.cpp parses the command line into
// these; the tests call them directly.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "src/cli/fields.hpp"
#include "src/cli/tables.hpp"

namespace metalearn::cli {

/// Everything that defines a run: config.json of its folder.
struct RunConfig {
  std::string algorithm;  ///< maml, reptile, protonet, matching, cnp, np, anp or rl2
  std::string tasks;      ///< sinusoid, omniglot, glyphs, gp, images, bandits or mdps
  TaskSettings task;
  /// The Gaussian-process family of a gp run (unused otherwise).
  data::GaussianProcessOptions gp{};
  /// The Bernoulli bandits of a bandits run (unused otherwise).
  env::BanditOptions bandits{};
  /// The tabular MDPs of an mdps run (unused otherwise).
  env::TabularMdpOptions mdp{};
  /// The image-completion tasks of an images run (unused otherwise).
  data::ImageCompletionOptions images{};
  RunSettings run;
  /// The algorithm's options, as its field table writes them (every field).
  Json options = Json::object();
};

/// The algorithms the command trains and the task families each takes.
const std::map<std::string, std::vector<std::string>>& algorithm_tasks();

/// The literature's settings of `algorithm` on `tasks` (the bundled examples'
/// defaults). @throws ValueError naming both when the pair is not supported.
RunConfig default_config(const std::string& algorithm, const std::string& tasks);

/// One flag per field of the algorithm's options, of the task and of the run settings,
/// showing `defaults`; values given are collected per table in `given`.
struct GivenFlags {
  std::map<std::string, Json> options, task, gp, bandits, mdp, images, run;
};
void add_config_flags(CLI::App& app, const RunConfig& defaults, GivenFlags& given);

/// Applies flags given on the command line to `config`. @throws ValueError naming the flag.
void apply_flags(const GivenFlags& given, RunConfig& config);

/// The JSON of a config (config.json), and back. @throws ValueError naming `file` and the
/// entry that is missing or does not fit.
Json to_json(const RunConfig& config);
RunConfig config_from_json(const Json& j, const std::string& file);

/// Reads RUN_DIR/config.json. @throws IoError / ValueError naming the file.
RunConfig read_config(const std::filesystem::path& run_dir);

struct Distribution;
/// read_config() on rank 0 of a distributed call, given to every rank (the run folder
/// need not be visible to the others); read_config() otherwise.
RunConfig read_config(const std::filesystem::path& run_dir, const Distribution& distribution);

/// Where a run reports: a line per evaluation and the final summary on `out`; a
/// progress line on stderr when it is a terminal. `stop` is polled after every
/// meta-step: when it returns true the run writes a checkpoint and ends.
struct Reporting {
  std::ostream* out = nullptr;
  bool progress = true;
  std::function<bool()> stop{};
};

/// How a train or resume call spreads its meta-batches over processes (`metalearn
/// train ... --distributed` under mpirun): every rank builds the run's learner and
/// computes its share of each meta-batch (distributed::DistributedTrainer); rank 0
/// alone reads and writes the run folder and prints.
struct Distribution {
  /// Over the ranks of MPI_COMM_WORLD (MPI must be initialised by the caller).
  bool enabled = false;
  /// Sum the tasks' gradients in global task order: the single-process bits for any
  /// number of ranks (more bytes per step than the default all-reduce).
  bool deterministic = false;
};

/// Whether this build has MPI (METALEARN_WITH_MPI), so Distribution::enabled works.
bool distributed_available();

/// What a train or resume call did.
struct TrainOutcome {
  std::int64_t start_step = 0;
  std::int64_t steps = 0;
  double seconds = 0.0;
  bool finished = false;  ///< reached the configured steps
  bool stopped = false;   ///< ended early by the time limit or `stop`
  double final_mean = 0.0, final_ci95 = 0.0;
  std::size_t final_episodes = 0;
};

/// Trains `config` into `run_dir`: writes config.json (refusing a folder holding
/// another run's), then trains through train::fit with checkpoints, metrics.jsonl and,
/// when the call ends, results.json and report.html. With `resume`, continues the run
/// in `run_dir`. With `distribution.enabled`, over the ranks of MPI_COMM_WORLD; ranks
/// other than 0 write nothing. @throws ValueError for an environment run (RL^2 has no
/// meta-batch of tasks to share) or a build without MPI.
TrainOutcome train(const RunConfig& config, const std::filesystem::path& run_dir, bool resume,
                   const Reporting& reporting, const Distribution& distribution = {});

/// What `metalearn evaluate` measures: test episodes, and the episodes' shape and
/// inner steps when they differ from the run's (unset: the run's).
struct EvalRequest {
  std::size_t episodes = 600;
  std::optional<Index> ways{};
  std::optional<Index> shots{};
  std::optional<int> steps{};
};

/// The test metric of a checkpoint with its 95% interval: `target` is a run folder
/// (its last checkpoint) or one of its checkpoint files (checkpoint_step<N>, say).
/// Written to RUN_DIR/evaluation.json.
struct Evaluation {
  double mean = 0.0, ci95 = 0.0;
  std::size_t episodes = 0;
  std::int64_t step = 0;
  std::string metric;  ///< "accuracy", "mse", "log-likelihood" or "return"
};
Evaluation evaluate(const std::filesystem::path& target, const EvalRequest& request,
                    std::ostream& out);

/// Lists the tensors (name, dtype, shape) and metadata of a safetensors file.
void inspect(const std::filesystem::path& file, std::ostream& out);

}  // namespace metalearn::cli
