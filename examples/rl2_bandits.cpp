// RL^2 (Duan et al. 2016) on Bernoulli bandits: a GRU policy trained by PPO over many
// bandits of k arms (p_i ~ U[0, 1]), its hidden state kept across the n pulls of a
// trial, evaluated as the mean total reward per trial over fresh bandits of the test
// stream (the protocol of rl2_baselines, whose numbers it can be set beside).
//
// The run folder (--out) holds checkpoint.safetensors (parameters, Adam's state and the
// step count, written after every evaluation) and log.csv; running again with the same
// folder continues where the last checkpoint stopped, bit for bit.
//
// Usage: rl2_bandits [--arms 5] [--pulls 10] [--steps 2000] [--trials 128] [--hidden 256]
//                    [--lr 3e-4] [--threads N] [--seed 1] [--eval-every 100]
//                    [--eval-trials 1000] [--out rl2_bandits]

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <metalearn/algorithms/rl2/rl2.hpp>
#include <metalearn/env/bandit.hpp>
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/train/checkpoint.hpp>
#include <string>

namespace ml = metalearn;
namespace ma = metalearn::algorithms;
namespace me = metalearn::env;
namespace fs = std::filesystem;

namespace {

struct Config {
  ml::Index arms = 5;
  ml::Index pulls = 10;
  std::int64_t steps = 2000;
  ml::Index trials = 128;
  ml::Index hidden = 256;
  double lr = 3e-4;
  int threads = 1;
  std::uint64_t seed = 1;
  std::int64_t eval_every = 100;
  std::size_t eval_trials = 1000;
  std::string out = "rl2_bandits";
};

/// What a checkpoint must agree on with the run that continues it.
ml::io::Metadata run_metadata(const Config& c) {
  return {{"rl2.arms", std::to_string(c.arms)},
          {"rl2.pulls", std::to_string(c.pulls)},
          {"rl2.hidden", std::to_string(c.hidden)},
          {"rl2.trials", std::to_string(c.trials)},
          {"rl2.seed", std::to_string(c.seed)}};
}

int run(const Config& c) {
  const me::BernoulliBandits family({.arms = c.arms, .pulls = c.pulls});
  ml::Generator gen(c.seed);
  ma::Rl2<me::BernoulliBandits> rl2(
      family, gen,
      {.hidden = c.hidden, .trials = c.trials, .lr = c.lr, .threads = c.threads, .seed = c.seed});
  const fs::path dir(c.out);
  fs::create_directories(dir);
  const fs::path checkpoint = dir / "checkpoint.safetensors";
  const ml::io::Metadata expected = run_metadata(c);
  if (fs::exists(checkpoint)) {
    const auto [state, saved] = ml::train::to_state(ml::io::load_checkpoint<float>(checkpoint),
                                                    ml::nn::ParamDict<float>(), checkpoint);
    for (const auto& [key, value] : expected) {
      const auto it = saved.find(key);
      if (it == saved.end() || it->second != value) {
        std::fprintf(stderr, "rl2_bandits: %s was written with %s = %s, this run has %s\n",
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
  std::printf("RL^2 on %lld-arm bandits, %lld pulls; GRU %lld, %lld trials per step\n",
              static_cast<long long>(c.arms), static_cast<long long>(c.pulls),
              static_cast<long long>(c.hidden), static_cast<long long>(c.trials));
  const auto start = std::chrono::steady_clock::now();
  ma::Rl2Stats stats;
  while (rl2.steps_taken() < c.steps) {
    stats = rl2.meta_step();
    const std::int64_t step = rl2.steps_taken();
    if (step % c.eval_every != 0 && step != c.steps) continue;
    const ma::EvalResult r = rl2.evaluate(c.eval_trials);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("step %6lld  train %.2f  eval %.2f +- %.2f  entropy %.3f  (%.0f s)\n",
                static_cast<long long>(step), stats.mean_return, r.mean, r.ci95, stats.entropy,
                seconds);
    std::fflush(stdout);
    log << fmt::format("{},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g}\n", step, stats.mean_return,
                       stats.loss, stats.entropy, stats.approx_kl, r.mean, r.ci95)
        << std::flush;
    ml::io::save_checkpoint(checkpoint, ml::train::to_checkpoint(rl2.state(), expected));
  }
  const ma::EvalResult r = rl2.evaluate(c.eval_trials);
  std::printf("final: %.2f +- %.2f mean total reward per trial over %zu test bandits\n", r.mean,
              r.ci95, r.episodes);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  CLI::App app("RL^2 on Bernoulli bandits (Duan et al. 2016), trained by PPO");
  // A flag given twice takes its last value (the reproduce script's defaults come first).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--arms", c.arms, "Arms k")->check(CLI::PositiveNumber);
  app.add_option("--pulls", c.pulls, "Pulls per trial n")->check(CLI::PositiveNumber);
  app.add_option("--steps", c.steps, "Meta-steps in all (a resumed run counts its own)");
  app.add_option("--trials", c.trials, "Trials per meta-step")->check(CLI::PositiveNumber);
  app.add_option("--hidden", c.hidden, "GRU units")->check(CLI::PositiveNumber);
  app.add_option("--lr", c.lr, "Adam's learning rate")->check(CLI::PositiveNumber);
  app.add_option("--threads", c.threads, "Threads (the results do not depend on it)")
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", c.seed, "Seed of the initial weights and environment streams");
  app.add_option("--eval-every", c.eval_every, "Evaluate and checkpoint every N steps")
      ->check(CLI::PositiveNumber);
  app.add_option("--eval-trials", c.eval_trials, "Test bandits per evaluation")
      ->check(CLI::PositiveNumber);
  app.add_option("--out", c.out, "Run folder (checkpoint.safetensors, log.csv)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run(c);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rl2_bandits: %s\n", e.what());
    return 1;
  }
}
