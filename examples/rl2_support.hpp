#pragma once
// What the RL^2 examples share: the flags of a run, and the loop that trains an Rl2
// agent on an environment family with PPO, evaluates it on fresh environments of the
// test stream, and keeps a resumable run folder (train::fit's checkpoint.safetensors and
// metrics.jsonl).

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <metalearn/algorithms/rl2/rl2.hpp>
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/train/fit.hpp>
#include <string>

namespace examples::rl2 {

/// The flags every RL^2 example takes, with their defaults.
struct RunArgs {
  std::int64_t steps = 2000;
  metalearn::Index trials = 128;
  metalearn::Index hidden = 256;
  double lr = 3e-4;
  int threads = 1;
  std::uint64_t seed = 1;
  std::int64_t eval_every = 100;
  std::size_t eval_trials = 1000;
  double time_limit = 0.0;  ///< minutes of training in this call (0: none)
  std::string out;
};

/// --steps, --trials, --hidden, --lr, --threads, --seed, --eval-every, --eval-trials,
/// --time-limit and --out; `what` names the environments ("bandits", "MDPs"). A flag
/// given twice takes its last value, so a reproduce script's defaults can come first.
inline void add_run_options(CLI::App& app, RunArgs& a, const std::string& what) {
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--steps", a.steps, "Meta-steps in all (a resumed run counts its own)");
  app.add_option("--trials", a.trials, "Trials per meta-step")->check(CLI::PositiveNumber);
  app.add_option("--hidden", a.hidden, "GRU units")->check(CLI::PositiveNumber);
  app.add_option("--lr", a.lr, "Adam's learning rate")->check(CLI::PositiveNumber);
  app.add_option("--threads", a.threads, "Threads (the results do not depend on it)")
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", a.seed, "Seed of the initial weights and environment streams");
  app.add_option("--eval-every", a.eval_every, "Evaluate and checkpoint every N steps")
      ->check(CLI::PositiveNumber);
  app.add_option("--eval-trials", a.eval_trials, "Test " + what + " per evaluation")
      ->check(CLI::PositiveNumber);
  app.add_option("--time-limit", a.time_limit,
                 "Minutes of training in this call (0: none); a checkpoint is written when it "
                 "passes, and running again continues")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--out", a.out, "Run folder (checkpoint.safetensors, metrics.jsonl)");
}

/// Trains `family` to a.steps meta-steps with train::fit, continuing from a.out's
/// checkpoint when there is one (refused when it was written with other `settings`),
/// evaluating and checkpointing every a.eval_every steps (metrics.jsonl holds every
/// tenth step's PPO diagnostics and every evaluation); then reports the evaluation on
/// a.eval_trials test environments at the last step. `what` names one trial's
/// environments in the final line.
template <class Family>
int train(const Family& family, const RunArgs& a, const metalearn::io::Metadata& settings,
          const char* what) {
  namespace ml = metalearn;
  ml::Generator gen(a.seed);
  ml::algorithms::Rl2<Family> rl2(
      family, gen,
      {.hidden = a.hidden, .trials = a.trials, .lr = a.lr, .threads = a.threads, .seed = a.seed});
  const auto start = std::chrono::steady_clock::now();
  double train_return = 0.0;
  const ml::train::FitOptions options{
      .steps = a.steps,
      .time_limit = 60.0 * a.time_limit,
      .eval_every = a.eval_every,
      .eval_episodes = a.eval_trials,
      .checkpoint_every = a.eval_every,
      .log_every = 10,
      .run_dir = a.out,
      .resume = true,
      .progress = false,
      .settings = settings,
      .on_step =
          [&](std::int64_t, const ml::algorithms::StepStats& s) {
            train_return = s.mean_return.value_or(0.0);
          },
      .on_eval =
          [&](std::int64_t step, const ml::algorithms::EvalResult& r) {
            const double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            std::printf("step %6lld  train %.2f  eval %.2f +- %.2f  (%.0f s)\n",
                        static_cast<long long>(step), train_return, r.mean, r.ci95, seconds);
            std::fflush(stdout);
          }};
  const ml::train::FitResult result = ml::train::fit(rl2, options);
  if (result.start_step > 0) {
    std::printf("this call continued the run in %s from its checkpoint of step %lld\n",
                a.out.c_str(), static_cast<long long>(result.start_step));
  }
  if (result.out_of_time) {
    std::printf("time limit reached at step %lld of %lld; run again to continue\n",
                static_cast<long long>(result.steps), static_cast<long long>(a.steps));
    return 0;
  }
  // A run that was already complete evaluated nothing in this call.
  const ml::algorithms::EvalResult r =
      result.last_eval ? *result.last_eval : rl2.evaluate(a.eval_trials);
  std::printf("final: %.2f +- %.2f mean total reward per trial over %zu test %s\n", r.mean, r.ci95,
              r.episodes, what);
  return 0;
}

/// Parses the command line, then runs `body`; parse errors exit as CLI11 does, and any
/// other error is printed after `program`: with exit code 1.
template <class Body>
int main_of(CLI::App& app, int argc, char** argv, const char* program, const Body& body) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 1;
  }
}

}  // namespace examples::rl2
