#pragma once
// What the RL^2 examples share: the flags of a run, and the loop that trains an Rl2
// agent on an environment family with PPO, evaluates it on fresh environments of the
// test stream, and keeps a resumable run folder (checkpoint.safetensors, log.csv).

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <metalearn/algorithms/rl2/rl2.hpp>
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/train/checkpoint.hpp>
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
  std::string out;
};

/// --steps, --trials, --hidden, --lr, --threads, --seed, --eval-every, --eval-trials and
/// --out; `what` names the environments ("bandits", "MDPs"). A flag given twice takes
/// its last value, so a reproduce script's defaults can come first.
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
  app.add_option("--out", a.out, "Run folder (checkpoint.safetensors, log.csv)");
}

/// Trains `family` to a.steps meta-steps, continuing from a.out's checkpoint when there
/// is one (refused, with exit code 2, when it was written with other `settings`),
/// logging and checkpointing every a.eval_every steps; then evaluates on a.eval_trials
/// test environments. `program` prefixes error messages; `what` names one trial's
/// environments in the final line.
template <class Family>
int train(const Family& family, const RunArgs& a, const metalearn::io::Metadata& settings,
          const char* program, const char* what) {
  namespace ml = metalearn;
  namespace fs = std::filesystem;
  ml::Generator gen(a.seed);
  ml::algorithms::Rl2<Family> rl2(
      family, gen,
      {.hidden = a.hidden, .trials = a.trials, .lr = a.lr, .threads = a.threads, .seed = a.seed});
  const fs::path dir(a.out);
  fs::create_directories(dir);
  const fs::path checkpoint = dir / "checkpoint.safetensors";
  if (fs::exists(checkpoint)) {
    const auto [state, saved] = ml::train::to_state(ml::io::load_checkpoint<float>(checkpoint),
                                                    ml::nn::ParamDict<float>(), checkpoint);
    for (const auto& [key, value] : settings) {
      const auto it = saved.find(key);
      if (it == saved.end() || it->second != value) {
        std::fprintf(stderr, "%s: %s was written with %s = %s, this run has %s\n", program,
                     checkpoint.c_str(), key.c_str(), it == saved.end() ? "?" : it->second.c_str(),
                     value.c_str());
        return 2;
      }
    }
    rl2.load_state(state);
    std::printf("resumed from %s at step %lld\n", checkpoint.c_str(),
                static_cast<long long>(rl2.steps_taken()));
  }
  std::ofstream log(dir / "log.csv", std::ios::app);
  if (rl2.steps_taken() == 0)
    log << "step,mean_return,loss,entropy,approx_kl,eval_mean,eval_ci95\n";
  const auto start = std::chrono::steady_clock::now();
  ml::algorithms::Rl2Stats stats;
  // The last evaluation and its step: the final report reuses it when training ended there.
  ml::algorithms::EvalResult r;
  std::int64_t evaluated_at = -1;
  while (rl2.steps_taken() < a.steps) {
    stats = rl2.meta_step();
    const std::int64_t step = rl2.steps_taken();
    if (step % a.eval_every != 0 && step != a.steps) continue;
    r = rl2.evaluate(a.eval_trials);
    evaluated_at = step;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("step %6lld  train %.2f  eval %.2f +- %.2f  entropy %.3f  (%.0f s)\n",
                static_cast<long long>(step), stats.mean_return.value_or(0.0), r.mean, r.ci95,
                stats.entropy, seconds);
    std::fflush(stdout);
    log << fmt::format("{},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g}\n", step,
                       stats.mean_return.value_or(0.0), stats.meta_loss, stats.entropy,
                       stats.approx_kl, r.mean, r.ci95)
        << std::flush;
    ml::io::save_checkpoint(checkpoint, ml::train::to_checkpoint(rl2.state(), settings));
  }
  if (evaluated_at != rl2.steps_taken()) r = rl2.evaluate(a.eval_trials);
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
