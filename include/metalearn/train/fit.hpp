#pragma once
/// @file
/// fit(): the training loop every meta-learner shares. Meta-steps up to a step count or
/// a time limit, evaluation every N steps, a checkpoint every N steps and when the run
/// stops, metrics as JSON lines, a progress line on a terminal; run again on the same
/// run directory, it continues from the checkpoint bit for bit (the learner's whole
/// state and the position of the task stream).
///
/// @code
/// train::fit(maml, batches, {.steps = 60'000, .eval_every = 500, .eval_episodes = 100,
///                            .checkpoint_every = 500, .run_dir = "runs/maml"},
///            &test_tasks);
/// @endcode
///
/// Run directory: checkpoint.safetensors (train::save_checkpoint, with the settings,
/// "train_seconds" and "step" in its metadata), checkpoint_step<N>.safetensors for the
/// steps in `keep`, and metrics.jsonl (one record per
/// logged step and per evaluation; a resumed run drops the records written after its
/// checkpoint, so the file reads as one uninterrupted run).
// SPDX-License-Identifier: MIT

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "metalearn/algorithms/meta_learner.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/data/task_sampler.hpp"
#include "metalearn/io/metrics_log.hpp"
#include "metalearn/train/checkpoint.hpp"

#if !defined(_WIN32)
#include <unistd.h>
#endif

namespace metalearn::train {

/// Options of fit(). The zero of every "every" means never (except at the end).
struct FitOptions {
  /// Meta-steps of the whole run: a resumed run continues up to the same total.
  std::int64_t steps = 1000;
  /// Stop after the meta-step that passes this many seconds of this call (0: no
  /// limit); a checkpoint is written then, so the next call continues.
  double time_limit = 0.0;
  /// Evaluate every this many meta-steps, and when the run reaches `steps`.
  std::int64_t eval_every = 0;
  /// Episodes of each evaluation (0: no evaluation).
  std::size_t eval_episodes = 0;
  /// Episodes of the evaluation when the run reaches `steps` (0: eval_episodes).
  std::size_t final_eval_episodes = 0;
  /// Write a checkpoint every this many meta-steps; one is always written when the
  /// call ends (needs run_dir).
  std::int64_t checkpoint_every = 0;
  /// Meta-steps whose checkpoint is also kept, as checkpoint_step<N>.safetensors
  /// (a checkpoint is written at each of them).
  std::vector<std::int64_t> keep{};
  /// Log the step's statistics every this many meta-steps.
  std::int64_t log_every = 0;
  /// Folder of checkpoint.safetensors and metrics.jsonl; empty: nothing is written.
  std::filesystem::path run_dir{};
  /// Continue from run_dir/checkpoint.safetensors when it exists.
  bool resume = true;
  /// A progress line on stderr, when stderr is a terminal.
  bool progress = true;
  /// Saved with every checkpoint; a checkpoint written with other values is not
  /// resumed (ValueError naming the first difference).
  io::Metadata settings{};
  /// Called after every meta-step with its number (from 1) and statistics.
  std::function<void(std::int64_t, const algorithms::StepStats&)> on_step{};
  /// Called after every evaluation with the step it followed.
  std::function<void(std::int64_t, const algorithms::EvalResult&)> on_eval{};
};

/// What a fit() call did.
struct FitResult {
  std::int64_t start_step = 0;  ///< steps_taken() when the call began (after a resume)
  std::int64_t steps = 0;       ///< steps_taken() when it ended
  double seconds = 0.0;         ///< wall time of the call
  /// Seconds of training over every call of the run (restored from the checkpoint).
  double train_seconds = 0.0;
  bool out_of_time = false;  ///< stopped by time_limit before `steps`
  std::optional<algorithms::EvalResult> last_eval;
};

/// A source of meta-batches that can be repositioned (data::MetaBatchSampler).
template <class B, class T>
concept BatchStream = requires(B& b, std::uint64_t position) {
  { b.next() } -> std::convertible_to<data::TaskBatch<T>>;
  b.set_position(position);
};

namespace detail {

/// Keeps the records of a JSON-lines metrics file whose "step" is at most `step`
/// (records written after the checkpoint a run resumes from).
inline void truncate_metrics(const std::filesystem::path& path, std::int64_t step) {
  if (!std::filesystem::exists(path)) return;
  std::vector<std::string> kept;
  {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      const std::size_t key = line.find("\"step\":");
      if (key == std::string::npos) continue;
      const long long at = std::strtoll(line.c_str() + key + 7, nullptr, 10);
      if (at <= step) kept.push_back(line);
    }
  }
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& line : kept) out << line << '\n';
    METALEARN_CHECK(out.good(), IoError, "train::fit: cannot write ", tmp.string());
  }
  std::filesystem::rename(tmp, path);
}

inline bool stderr_is_terminal() {
#if defined(_WIN32)
  return false;
#else
  return isatty(fileno(stderr)) != 0;
#endif
}

}  // namespace detail

/// Meta-trains `learner` on meta-batches from `batches` (a fresh stream: fit()
/// positions it at the learner's step) as `options` say, evaluating on `eval` when
/// given. Returns what the call did.
/// @throws ValueError when options are invalid or a checkpoint to resume was written
/// with other settings; the learner's errors (NonFiniteError, ...) propagate after
/// nothing of the failed step was applied, and the last checkpoint stays as it was.
template <class L, class B>
FitResult fit(L& learner, B& batches, const FitOptions& options,
              const data::AnyTaskSampler<typename L::value_type>* eval = nullptr) {
  static_assert(algorithms::MetaLearner<L>,
                "train::fit: the learner must satisfy algorithms::MetaLearner (meta_gradient, "
                "apply, meta_step, adapt, predict, evaluate, meta_parameters, state, load_state "
                "and steps_taken; see algorithms/meta_learner.hpp)");
  static_assert(BatchStream<B, typename L::value_type>,
                "train::fit: the batch source must provide next() returning "
                "data::TaskBatch<T> and set_position(std::uint64_t), as data::MetaBatchSampler "
                "does");
  using Clock = std::chrono::steady_clock;
  METALEARN_CHECK(options.steps >= 0 && options.eval_every >= 0 && options.checkpoint_every >= 0 &&
                      options.log_every >= 0 && options.time_limit >= 0.0,
                  ValueError, "train::fit: steps (", options.steps, "), eval_every (",
                  options.eval_every, "), checkpoint_every (", options.checkpoint_every,
                  "), log_every (", options.log_every, ") and time_limit (", options.time_limit,
                  ") must be non-negative");
  METALEARN_CHECK(options.eval_episodes == 0 || eval != nullptr, ValueError,
                  "train::fit: eval_episodes is ", options.eval_episodes,
                  " but no evaluation sampler was given");
  const bool files = !options.run_dir.empty();
  const std::filesystem::path checkpoint = options.run_dir / "checkpoint.safetensors";
  const std::filesystem::path metrics = options.run_dir / "metrics.jsonl";
  FitResult result;
  double trained_before = 0.0;
  bool resumed = false;
  if (files) {
    std::filesystem::create_directories(options.run_dir);
    if (options.resume && std::filesystem::exists(checkpoint)) {
      // Read once; check the settings before anything is loaded into the learner.
      const io::TrainingCheckpoint<typename L::value_type> saved =
          io::load_checkpoint<typename L::value_type>(checkpoint);
      for (const auto& [key, value] : options.settings) {
        const auto it = saved.metadata.find(key);
        METALEARN_CHECK(it != saved.metadata.end() && it->second == value, ValueError,
                        "train::fit: ", checkpoint.string(), " was written with ", key, " = ",
                        it == saved.metadata.end() ? std::string("(missing)") : it->second,
                        ", this run has ", value,
                        "; use another run directory or resume = false to start over");
      }
      io::Metadata metadata;
      learner.load_state(to_state(saved, learner.state().buffers, checkpoint, &metadata));
      const auto seconds = metadata.find("train_seconds");
      if (seconds != metadata.end()) trained_before = std::stod(seconds->second);
      resumed = true;
    }
    if (resumed) detail::truncate_metrics(metrics, learner.steps_taken());
  }
  result.start_step = learner.steps_taken();
  batches.set_position(static_cast<std::uint64_t>(result.start_step));
  std::optional<io::MetricsLog> log;
  if (files) log.emplace(metrics, /*append=*/resumed);

  const auto t0 = Clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  const bool progress = options.progress && detail::stderr_is_terminal();
  const auto save = [&](std::int64_t step) {
    if (!files) return;
    io::Metadata metadata = options.settings;
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.17g", trained_before + elapsed());
    metadata["train_seconds"] = seconds;
    metadata["step"] = std::to_string(step);
    save_checkpoint(checkpoint, learner, std::move(metadata));
    if (std::find(options.keep.begin(), options.keep.end(), step) != options.keep.end()) {
      std::filesystem::copy_file(
          checkpoint, options.run_dir / ("checkpoint_step" + std::to_string(step) + ".safetensors"),
          std::filesystem::copy_options::overwrite_existing);
    }
  };
  const auto evaluate = [&](std::int64_t step, bool last) {
    if (options.eval_episodes == 0) return;
    const std::size_t episodes = last && options.final_eval_episodes > 0
                                     ? options.final_eval_episodes
                                     : options.eval_episodes;
    algorithms::EvalResult r = learner.evaluate(*eval, episodes);
    if (log) {
      log->write({{"step", static_cast<double>(step)},
                  {"eval_mean", r.mean},
                  {"eval_ci95", r.ci95},
                  {"eval_episodes", static_cast<double>(r.episodes)},
                  {"seconds", trained_before + elapsed()}});
    }
    if (options.on_eval) options.on_eval(step, r);
    result.last_eval = std::move(r);
  };

  std::int64_t step = result.start_step;
  while (step < options.steps) {
    const algorithms::StepStats stats = learner.meta_step(batches.next());
    step = learner.steps_taken();
    const double now = elapsed();
    if (options.on_step) options.on_step(step, stats);
    if (progress) {
      std::fprintf(stderr, "\rstep %" PRId64 "/%" PRId64 "  meta-loss %.4f  %.2f steps/s   ", step,
                   options.steps, stats.meta_loss,
                   static_cast<double>(step - result.start_step) / (now > 0 ? now : 1.0));
    }
    if (log && options.log_every > 0 && step % options.log_every == 0) {
      io::MetricsLog::Record record{{"step", static_cast<double>(step)},
                                    {"meta_loss", stats.meta_loss},
                                    {"seconds", trained_before + now}};
      if (stats.post_accuracy >= 0.0) record.emplace_back("accuracy", stats.post_accuracy);
      log->write(record);
    }
    const bool last = step >= options.steps;
    result.out_of_time = !last && options.time_limit > 0.0 && now > options.time_limit;
    if (last || (options.eval_every > 0 && step % options.eval_every == 0)) {
      if (progress) std::fprintf(stderr, "\n");
      evaluate(step, last);
    }
    const bool kept =
        std::find(options.keep.begin(), options.keep.end(), step) != options.keep.end();
    if (last || result.out_of_time || kept ||
        (options.checkpoint_every > 0 && step % options.checkpoint_every == 0)) {
      save(step);
    }
    if (result.out_of_time) break;
  }
  if (progress && step > result.start_step) std::fprintf(stderr, "\n");
  result.steps = learner.steps_taken();
  result.seconds = elapsed();
  result.train_seconds = trained_before + result.seconds;
  return result;
}

}  // namespace metalearn::train
