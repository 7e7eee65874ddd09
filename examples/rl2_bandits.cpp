// RL^2 (Duan et al. 2016) on Bernoulli bandits: a GRU policy trained by PPO over many
// bandits of k arms (p_i ~ U[0, 1]), its hidden state kept across the n pulls of a
// trial, evaluated as the mean total reward per trial over fresh bandits of the test
// stream (the protocol of rl2_baselines, whose numbers it can be set beside).
//
// Trains with train::fit: the run folder (--out) holds checkpoint.safetensors
// (parameters, Adam's state and the step count, written after every evaluation and when
// --time-limit passes) and metrics.jsonl (PPO's diagnostics every 10 steps, every
// evaluation); running again with the same folder continues where the last checkpoint
// stopped, bit for bit.
//
// Usage: rl2_bandits [--arms 5] [--pulls 10] [--steps 2000] [--trials 128] [--hidden 256]
//                    [--lr 3e-4] [--threads N] [--seed 1] [--eval-every 100]
//                    [--eval-trials 1000] [--time-limit MIN] [--out rl2_bandits]

#include <cstdio>
#include <metalearn/env/bandit.hpp>
#include <string>

#include "rl2_support.hpp"

namespace ml = metalearn;

int main(int argc, char** argv) {
  examples::rl2::RunArgs a;
  a.out = "rl2_bandits";
  ml::Index arms = 5, pulls = 10;
  CLI::App app("RL^2 on Bernoulli bandits (Duan et al. 2016), trained by PPO");
  examples::rl2::add_run_options(app, a, "bandits");
  app.add_option("--arms", arms, "Arms k")->check(CLI::PositiveNumber);
  app.add_option("--pulls", pulls, "Pulls per trial n")->check(CLI::PositiveNumber);
  return examples::rl2::main_of(app, argc, argv, "rl2_bandits", [&] {
    const ml::env::BernoulliBandits family({.arms = arms, .pulls = pulls});
    std::printf("RL^2 on %lld-arm bandits, %lld pulls; GRU %lld, %lld trials per step\n",
                static_cast<long long>(arms), static_cast<long long>(pulls),
                static_cast<long long>(a.hidden), static_cast<long long>(a.trials));
    // What a checkpoint must agree on with the run that continues it.
    const ml::io::Metadata settings{{"rl2.arms", std::to_string(arms)},
                                    {"rl2.pulls", std::to_string(pulls)},
                                    {"rl2.hidden", std::to_string(a.hidden)},
                                    {"rl2.trials", std::to_string(a.trials)},
                                    {"rl2.seed", std::to_string(a.seed)}};
    return examples::rl2::train(family, a, settings, "bandits");
  });
}
