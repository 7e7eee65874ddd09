// RL^2 (Duan et al. 2016, section 5.2) on random tabular MDPs: a GRU policy trained by
// PPO over many MDPs (10 states and 5 actions by default; mean rewards R(s, a) ~
// N(1, 1) with unit Gaussian noise on every step, transition rows ~ Dirichlet(1)),
// its hidden state kept across the n episodes of horizon 10 of a trial, evaluated as
// the mean total reward per trial over fresh MDPs of the test stream (the protocol of
// rl2_baselines, whose random, PSRL and greedy numbers it can be set beside).
//
// The run folder (--out) holds checkpoint.safetensors and metrics.jsonl, as for
// rl2_bandits; running again with the same folder continues where the last checkpoint
// stopped.
//
// Usage: rl2_mdps [--states 10] [--actions 5] [--episodes 10] [--horizon 10]
//                 [--steps 2000] [--trials 128] [--hidden 256] [--lr 3e-4] [--threads N]
//                 [--seed 1] [--eval-every 100] [--eval-trials 1000] [--time-limit MIN]
//                 [--out rl2_mdps]

#include <cstdio>
#include <metalearn/env/tabular_mdp.hpp>
#include <string>

#include "rl2_support.hpp"

namespace ml = metalearn;

int main(int argc, char** argv) {
  examples::rl2::RunArgs a;
  a.out = "rl2_mdps";
  ml::env::TabularMdpOptions mdp;
  CLI::App app("RL^2 on random tabular MDPs (Duan et al. 2016), trained by PPO");
  examples::rl2::add_run_options(app, a, "MDPs");
  app.add_option("--states", mdp.states, "States")->check(CLI::PositiveNumber);
  app.add_option("--actions", mdp.actions, "Actions")->check(CLI::PositiveNumber);
  app.add_option("--episodes", mdp.episodes, "Episodes per trial n")->check(CLI::PositiveNumber);
  app.add_option("--horizon", mdp.horizon, "Steps per episode")->check(CLI::PositiveNumber);
  return examples::rl2::main_of(app, argc, argv, "rl2_mdps", [&] {
    const ml::env::TabularMdps family(mdp);
    std::printf(
        "RL^2 on tabular MDPs: %lld states, %lld actions, %lld episodes of %lld steps; "
        "GRU %lld, %lld trials per step\n",
        static_cast<long long>(mdp.states), static_cast<long long>(mdp.actions),
        static_cast<long long>(mdp.episodes), static_cast<long long>(mdp.horizon),
        static_cast<long long>(a.hidden), static_cast<long long>(a.trials));
    const ml::io::Metadata settings{{"rl2.states", std::to_string(mdp.states)},
                                    {"rl2.actions", std::to_string(mdp.actions)},
                                    {"rl2.episodes", std::to_string(mdp.episodes)},
                                    {"rl2.horizon", std::to_string(mdp.horizon)},
                                    {"rl2.hidden", std::to_string(a.hidden)},
                                    {"rl2.trials", std::to_string(a.trials)},
                                    {"rl2.seed", std::to_string(a.seed)}};
    return examples::rl2::train(family, a, settings, "MDPs");
  });
}
