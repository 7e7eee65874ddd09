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
/// train::fit(rl2, {.steps = 3'000, .eval_every = 100, .eval_episodes = 1'000,
///                  .run_dir = "runs/rl2"});  // learners of environment families
/// @endcode
///
/// Run directory: checkpoint.safetensors (train::save_checkpoint, with the settings,
/// "train_seconds" and "step" in its metadata), checkpoint_step<N>.safetensors for the
/// steps in `keep`, and metrics.jsonl (one record per
/// logged step and per evaluation; a resumed run drops the records written after its
/// checkpoint, so the file reads as one uninterrupted run). A logged step's record has
/// "step", "meta_loss", "seconds", the outer learning rate "lr" when the learner has
/// one, "accuracy" for a classifier and "return" (mean total reward per trial) for a
/// learner of environments, then the diagnostics the step's statistics name, if they
/// have diagnostics() (RL^2: policy_loss, value_loss, entropy, approx_kl, clip_fraction
/// and grad_norm, the gradient's norm before clipping).
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
  /// Polled after every meta-step: when it returns true the call writes a checkpoint
  /// and returns, as when the time limit passes (a program's signal flag, say).
  std::function<bool()> stop{};
};

/// What a fit() call did.
struct FitResult {
  std::int64_t start_step = 0;  ///< steps_taken() when the call began (after a resume)
  std::int64_t steps = 0;       ///< steps_taken() when it ended
  double seconds = 0.0;         ///< wall time of the call
  /// Seconds of training over every call of the run (restored from the checkpoint).
  double train_seconds = 0.0;
  bool out_of_time = false;  ///< stopped before `steps` by time_limit or by stop
  bool stopped = false;      ///< stopped before `steps` by FitOptions::stop
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

/// Evaluates a learner on `episodes` episodes (or trials); empty: no evaluation.
using Evaluator = std::function<algorithms::EvalResult(std::size_t)>;

/// The evaluation of a supervised learner on `eval` (none when it is null).
template <class L>
Evaluator evaluate_on(const L& learner, const data::AnyTaskSampler<typename L::value_type>* eval) {
  if (eval == nullptr) return {};
  return [&learner, eval](std::size_t episodes) { return learner.evaluate(*eval, episodes); };
}

/// The outer learning rate of `learner`'s state, when its optimizer has one.
template <class T>
std::optional<double> outer_lr(const algorithms::LearnerState<T>& state) {
  if (!state.optimizer) return std::nullopt;
  return state.optimizer->lr;
}

/// The run-directory side of a training loop, shared by train::fit and
/// distributed::DistributedTrainer: resuming from run_dir/checkpoint.safetensors,
/// checkpoints (with "train_seconds" and "step" in their metadata, kept steps copied to
/// checkpoint_step<N>.safetensors), metrics.jsonl records, evaluations, the progress
/// line and the FitResult of the call. Only the root process (rank 0, or the one
/// process of fit) writes files, evaluates and prints.
template <class L>
class RunDirectory {
 public:
  /// The learner's scalar type.
  using T = typename L::value_type;

  /// Creates run_dir and resumes `learner` from its checkpoint when `options` say so
  /// (on the root only). `function` names the caller in error messages.
  /// @throws ValueError when the checkpoint was written with other settings.
  RunDirectory(L& learner, const FitOptions& options, Evaluator evaluate, const char* function,
               bool root)
      : learner_(learner),
        options_(options),
        evaluate_(std::move(evaluate)),
        root_(root),
        files_(root && !options.run_dir.empty()),
        checkpoint_(options.run_dir / "checkpoint.safetensors"),
        metrics_(options.run_dir / "metrics.jsonl") {
    if (!files_) return;
    std::filesystem::create_directories(options_.run_dir);
    if (options_.resume && std::filesystem::exists(checkpoint_)) {
      // Read once; check the settings before anything is loaded into the learner.
      const io::TrainingCheckpoint<T> saved = io::load_checkpoint<T>(checkpoint_);
      for (const auto& [key, value] : options_.settings) {
        const auto it = saved.metadata.find(key);
        METALEARN_CHECK(it != saved.metadata.end() && it->second == value, ValueError, function,
                        ": ", checkpoint_.string(), " was written with ", key, " = ",
                        it == saved.metadata.end() ? std::string("(missing)") : it->second,
                        ", this run has ", value,
                        "; use another run directory or resume = false to start over");
      }
      const auto [state, metadata] = to_state(saved, learner_.state().buffers, checkpoint_);
      learner_.load_state(state);
      const auto seconds = metadata.find("train_seconds");
      if (seconds != metadata.end()) trained_before_ = std::stod(seconds->second);
      resumed_ = true;
    }
    if (resumed_) truncate_metrics(metrics_, learner_.steps_taken());
  }

  /// Begins the call at meta-step `start_step`: opens metrics.jsonl (appending after a
  /// resume) and starts the clock.
  void start(std::int64_t start_step) {
    result_.start_step = start_step;
    if (files_) log_.emplace(metrics_, /*append=*/resumed_);
    t0_ = Clock::now();
    progress_ = root_ && options_.progress && stderr_is_terminal();
  }

  /// Seconds since start().
  [[nodiscard]] double elapsed() const {
    return std::chrono::duration<double>(Clock::now() - t0_).count();
  }

  /// Everything after meta-step `step` (its statistics `stats`, taken `now` seconds
  /// into the call): on_step, the progress line, the log record, the evaluation and
  /// the checkpoint. `time_up`: the time limit has passed. Returns whether the loop
  /// stops for lack of time.
  /// `extra`: the learner's own diagnostics of the step (name, value), logged after the
  /// common fields.
  bool after_step(std::int64_t step, const algorithms::StepStats& stats, double now, bool time_up,
                  const io::MetricsLog::Record& extra = {}) {
    if (options_.on_step) options_.on_step(step, stats);
    if (progress_) {
      const double rate = static_cast<double>(step - result_.start_step) / (now > 0 ? now : 1.0);
      const auto left = static_cast<std::int64_t>(
          rate > 0 ? static_cast<double>(options_.steps - step) / rate : 0.0);
      std::fprintf(stderr,
                   "\rstep %" PRId64 "/%" PRId64 "  meta-loss %.4f  %.2f steps/s  ETA %" PRId64
                   ":%02" PRId64 ":%02" PRId64 "   ",
                   step, options_.steps, stats.meta_loss, rate, left / 3600, left / 60 % 60,
                   left % 60);
    }
    if (log_ && options_.log_every > 0 && step % options_.log_every == 0) {
      io::MetricsLog::Record record{{"step", static_cast<double>(step)},
                                    {"meta_loss", stats.meta_loss},
                                    {"seconds", trained_before_ + now}};
      if (const auto lr = outer_lr(learner_.state())) record.emplace_back("lr", *lr);
      if (stats.post_accuracy) record.emplace_back("accuracy", *stats.post_accuracy);
      if (stats.mean_return) record.emplace_back("return", *stats.mean_return);
      record.insert(record.end(), extra.begin(), extra.end());
      log_->write(record);
    }
    const bool last = step >= options_.steps;
    result_.out_of_time = !last && time_up;
    if (last || (options_.eval_every > 0 && step % options_.eval_every == 0)) {
      if (progress_) std::fprintf(stderr, "\n");
      evaluate(step, last);
    }
    const bool kept =
        std::find(options_.keep.begin(), options_.keep.end(), step) != options_.keep.end();
    if (last || result_.out_of_time || kept ||
        (options_.checkpoint_every > 0 && step % options_.checkpoint_every == 0)) {
      save(step);
    }
    return result_.out_of_time;
  }

  /// Ends the call after meta-step `step` and returns what it did.
  FitResult finish(std::int64_t step) {
    if (progress_ && step > result_.start_step) std::fprintf(stderr, "\n");
    result_.steps = learner_.steps_taken();
    result_.seconds = elapsed();
    result_.train_seconds = trained_before_ + result_.seconds;
    return std::move(result_);
  }

 private:
  using Clock = std::chrono::steady_clock;

  void save(std::int64_t step) {
    if (!files_) return;
    io::Metadata metadata = options_.settings;
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.17g", trained_before_ + elapsed());
    metadata["train_seconds"] = seconds;
    metadata["step"] = std::to_string(step);
    save_checkpoint(checkpoint_, learner_, std::move(metadata));
    if (std::find(options_.keep.begin(), options_.keep.end(), step) != options_.keep.end()) {
      std::filesystem::copy_file(
          checkpoint_,
          options_.run_dir / ("checkpoint_step" + std::to_string(step) + ".safetensors"),
          std::filesystem::copy_options::overwrite_existing);
    }
  }

  void evaluate(std::int64_t step, bool last) {
    if (!root_ || options_.eval_episodes == 0 || !evaluate_) return;
    const std::size_t episodes = last && options_.final_eval_episodes > 0
                                     ? options_.final_eval_episodes
                                     : options_.eval_episodes;
    algorithms::EvalResult r = evaluate_(episodes);
    if (log_) {
      log_->write({{"step", static_cast<double>(step)},
                   {"eval_mean", r.mean},
                   {"eval_ci95", r.ci95},
                   {"eval_episodes", static_cast<double>(r.episodes)},
                   {"seconds", trained_before_ + elapsed()}});
    }
    if (options_.on_eval) options_.on_eval(step, r);
    result_.last_eval = std::move(r);
  }

  L& learner_;
  const FitOptions& options_;
  Evaluator evaluate_;
  bool root_;
  bool files_;
  std::filesystem::path checkpoint_;
  std::filesystem::path metrics_;
  double trained_before_ = 0.0;
  bool resumed_ = false;
  bool progress_ = false;
  std::optional<io::MetricsLog> log_;
  Clock::time_point t0_{};
  FitResult result_;
};

}  // namespace detail

namespace detail {

/// Throws ValueError naming `function` for a negative count or time limit.
inline void check_fit_options(const FitOptions& options, const char* function) {
  METALEARN_CHECK(options.steps >= 0 && options.eval_every >= 0 && options.checkpoint_every >= 0 &&
                      options.log_every >= 0 && options.time_limit >= 0.0,
                  ValueError, function, ": steps (", options.steps, "), eval_every (",
                  options.eval_every, "), checkpoint_every (", options.checkpoint_every,
                  "), log_every (", options.log_every, ") and time_limit (", options.time_limit,
                  ") must be non-negative");
}

/// The loop of fit(): `meta_step()` (one of the learner's meta-steps, returning its
/// StepStats, or a type derived from it with diagnostics() to log) until options.steps, the time
/// limit or options.stop, each step followed by `run`'s logging, evaluation and checkpoints.
template <class L, class MetaStep>
FitResult run_loop(L& learner, RunDirectory<L>& run, const FitOptions& options,
                   MetaStep&& meta_step) {
  const std::int64_t start_step = learner.steps_taken();
  run.start(start_step);
  std::int64_t step = start_step;
  bool asked = false;
  while (step < options.steps) {
    const auto stats = meta_step();
    step = learner.steps_taken();
    const double now = run.elapsed();
    asked = options.stop && options.stop();
    // A learner's step statistics may name diagnostics of their own (Rl2Stats: PPO's).
    io::MetricsLog::Record extra;
    if constexpr (requires { stats.diagnostics(); }) {
      for (const auto& [name, value] : stats.diagnostics()) extra.emplace_back(name, value);
    }
    if (run.after_step(step, stats, now,
                       asked || (options.time_limit > 0.0 && now > options.time_limit), extra)) {
      break;
    }
  }
  FitResult result = run.finish(step);
  result.stopped = asked && result.out_of_time;
  return result;
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
  detail::check_fit_options(options, "train::fit");
  METALEARN_CHECK(options.eval_episodes == 0 || eval != nullptr, ValueError,
                  "train::fit: eval_episodes is ", options.eval_episodes,
                  " but no evaluation sampler was given");
  detail::RunDirectory<L> run(learner, options, detail::evaluate_on(learner, eval), "train::fit",
                              /*root=*/true);
  batches.set_position(static_cast<std::uint64_t>(learner.steps_taken()));
  return detail::run_loop(learner, run, options, [&] { return learner.meta_step(batches.next()); });
}

/// Meta-trains a learner of environment families (RL^2), which collects its own trials
/// from the family's training stream at its step, as `options` say; evaluations are
/// learner.evaluate(eval_episodes): the mean total reward per trial over that many
/// fresh test environments. Checkpoints, resume, metrics and stopping as the other
/// overload.
/// @throws as the other overload.
template <class L>
  requires algorithms::EnvironmentMetaLearner<L>
FitResult fit(L& learner, const FitOptions& options) {
  detail::check_fit_options(options, "train::fit");
  detail::RunDirectory<L> run(
      learner, options, [&learner](std::size_t trials) { return learner.evaluate(trials); },
      "train::fit",
      /*root=*/true);
  return detail::run_loop(learner, run, options, [&] { return learner.meta_step(); });
}

}  // namespace metalearn::train
