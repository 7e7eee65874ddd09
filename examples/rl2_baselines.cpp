// The baselines of Duan et al. (2016), "RL^2: Fast Reinforcement Learning via Slow
// Reinforcement Learning", Tables 1 and 2, measured with metalearn's env layer and
// printed beside the paper's values as markdown tables.
//
// Bandits: k arms, n pulls, p_i ~ U[0, 1]; random, Thompson sampling, UCB1 in the form
// of the paper's baseline code (Beta(1, 1) pseudo counts, c tuned on {0, 0.1, ..., 1}),
// textbook UCB1, epsilon-greedy (epsilon tuned on {0, 0.1, ..., 1}) and greedy. Tabular
// MDPs: 10 states, 5 actions, horizon 10, n episodes; random, PSRL, greedy (certainty-
// equivalent planning), epsilon-greedy (tuned on {0.1, ..., 1}), and PSRL with the
// family's own prior. As in the paper's code, the tuned constants are chosen on the
// evaluation trials themselves.
//
// With --curves DIR it also writes the mean cumulative regret of every agent after every
// pull (DIR/bandit_k<K>_n<N>.csv) and after every episode (DIR/mdp_n<N>.csv), against the
// best arm and the optimal policy of the same environments.
//
// Usage: rl2_baselines [--trials 1000] [--seed 1] [--threads N] [--arms 5 10]
//                      [--pulls 10 100] [--episodes 10 25 50 75 100] [--curves DIR]

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <metalearn/env.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace ml = metalearn;
namespace me = metalearn::env;

// Duan et al. (2016), Table 1: (k, n) -> Random, Gittins, TS, OTS, UCB1, eps-Greedy,
// Greedy, RL^2.
struct PaperBanditRow {
  double random, gittins, ts, ots, ucb1, eps_greedy, greedy, rl2;
};
const std::map<std::pair<int, int>, PaperBanditRow> kPaperBandits = {
    {{5, 10}, {5.0, 6.6, 5.7, 6.5, 6.7, 6.6, 6.6, 6.7}},
    {{10, 10}, {5.0, 6.6, 5.5, 6.2, 6.7, 6.6, 6.6, 6.7}},
    {{50, 10}, {5.1, 6.5, 5.2, 5.5, 6.6, 6.5, 6.5, 6.8}},
    {{5, 100}, {49.9, 78.3, 74.7, 77.9, 78.0, 75.4, 74.8, 78.7}},
    {{10, 100}, {49.9, 82.8, 76.7, 81.4, 82.4, 77.4, 77.1, 83.5}},
    {{50, 100}, {49.8, 85.2, 64.5, 67.7, 84.3, 78.3, 78.0, 84.9}},
    {{5, 500}, {249.8, 405.8, 402.0, 406.7, 405.8, 388.2, 380.6, 401.6}},
    {{10, 500}, {249.0, 437.8, 429.5, 438.9, 437.1, 408.0, 395.0, 432.5}},
    {{50, 500}, {249.6, 463.7, 427.2, 437.6, 457.6, 413.6, 402.8, 438.9}},
};

// Duan et al. (2016), Table 2: n episodes -> Random, PSRL, OPSRL, UCRL2, BEB, eps-Greedy,
// Greedy, RL^2.
struct PaperMdpRow {
  double random, psrl, opsrl, ucrl2, beb, eps_greedy, greedy, rl2;
};
const std::map<int, PaperMdpRow> kPaperMdps = {
    {10, {100.1, 138.1, 144.1, 146.6, 150.2, 132.8, 134.8, 156.2}},
    {25, {250.2, 408.8, 425.2, 424.1, 427.8, 377.3, 368.8, 445.7}},
    {50, {499.7, 904.4, 930.7, 918.9, 917.8, 823.3, 769.3, 936.1}},
    {75, {749.9, 1417.1, 1449.2, 1427.6, 1422.6, 1293.9, 1172.9, 1428.8}},
    {100, {999.4, 1939.5, 1973.9, 1942.1, 1935.1, 1778.2, 1578.5, 1913.7}},
};

std::string cell(const me::Score& s, double paper) {
  const int digits = s.mean < 20.0 ? 2 : 1;
  return fmt::format("{:.{}f} ± {:.{}f} ({:.1f})", s.mean, digits, s.ci95, digits, paper);
}

std::string cell(const me::Score& s) {
  const int digits = s.mean < 20.0 ? 2 : 1;
  return fmt::format("{:.{}f} ± {:.{}f}", s.mean, digits, s.ci95, digits);
}

/// The best score over a grid of a constant, and the constant.
template <class Make>
std::pair<me::Score, double> tuned(const std::vector<double>& grid, Make&& run) {
  std::pair<me::Score, double> best{run(grid.front()), grid.front()};
  for (std::size_t i = 1; i < grid.size(); ++i) {
    me::Score s = run(grid[i]);
    if (s.mean > best.first.mean) best = {std::move(s), grid[i]};
  }
  return best;
}

/// Writes one CSV of mean cumulative regret: a row per `group` steps of the trial (1: every
/// pull; the horizon: every episode), a column per agent; regret after row j is
/// j * best - the mean reward summed over the first j * group steps.
void write_regret(const std::filesystem::path& path, double best, ml::Index group,
                  const std::vector<std::pair<std::string, const me::Score*>>& agents) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    fmt::print(stderr, "rl2_baselines: cannot write {}\n", path.string());
    std::exit(1);
  }
  fmt::print(f, "{}", group == 1 ? "pull" : "episode");
  for (const auto& [name, score] : agents) fmt::print(f, ",{}", name);
  fmt::print(f, "\n");
  const std::size_t steps = agents.front().second->mean_rewards.size();
  const auto g = static_cast<std::size_t>(group);
  std::vector<double> sums(agents.size(), 0.0);
  for (std::size_t t = 0; t < steps; ++t) {
    for (std::size_t a = 0; a < agents.size(); ++a) sums[a] += agents[a].second->mean_rewards[t];
    if ((t + 1) % g != 0) continue;
    const double rows = static_cast<double>((t + 1) / g);
    fmt::print(f, "{}", (t + 1) / g);
    for (double s : sums) fmt::print(f, ",{:.6f}", rows * best - s);
    fmt::print(f, "\n");
  }
  if (std::fclose(f) != 0) {
    fmt::print(stderr, "rl2_baselines: cannot write {}\n", path.string());
    std::exit(1);
  }
}

std::vector<double> grid(double from, double to, double step) {
  std::vector<double> out;
  for (int i = 0; from + i * step <= to + 1e-9; ++i) out.push_back(from + i * step);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Duan et al. (2016) RL^2 Tables 1 and 2: the baselines, measured");
  ml::Index trials = 1000;
  std::uint64_t seed = 1;
  std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<int> arms = {5, 10};
  std::vector<int> pulls = {10, 100};
  std::vector<int> episodes = {10, 25, 50, 75, 100};
  app.add_option("--trials", trials, "Trials (environments) per entry")->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "Seed of the run (environments and agents)");
  app.add_option("--threads", threads, "Threads running trials")
      ->check(CLI::PositiveNumber)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--arms", arms, "Bandit arms k (0 skips the bandits)");
  app.add_option("--pulls", pulls, "Bandit pulls per trial n");
  app.add_option("--episodes", episodes, "MDP episodes per trial (0 skips the MDPs)");
  std::string curves;
  app.add_option("--curves", curves, "Directory for cumulative regret curves (CSV)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const me::EvalOptions eval{
      .trials = trials, .seed = seed, .split = me::Split::kTest, .threads = threads};
  const auto t0 = std::chrono::steady_clock::now();
  if (!curves.empty()) std::filesystem::create_directories(curves);
  fmt::print(
      "Mean total reward per trial ± 95% interval over {} trials (seed {}, test split); "
      "the paper's value in parentheses.\n\n",
      trials, seed);

  if (!arms.empty() && arms.front() > 0) {
    fmt::print("Table 1, Bernoulli bandits\n\n");
    fmt::print(
        "| k | n | Random | TS | UCB1 (paper's form, tuned c) | UCB1 (textbook) | "
        "eps-greedy (tuned eps) | Greedy | paper Gittins | paper OTS | paper RL^2 |\n");
    fmt::print("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int n : pulls) {
      for (int k : arms) {
        const me::BernoulliBandits family({.arms = k, .pulls = n});
        const auto it = kPaperBandits.find({k, n});
        const bool have = it != kPaperBandits.end();
        const PaperBanditRow p = have ? it->second : PaperBanditRow{};
        auto show = [&](const me::Score& s, double paper) {
          return have ? cell(s, paper) : cell(s);
        };
        const auto random = me::evaluate(family, me::RandomAgent{}, eval);
        const auto ts = me::evaluate(family, me::ThompsonSampling{}, eval);
        const auto [ucb, c] = tuned(grid(0.0, 1.0, 0.1), [&](double v) {
          return me::evaluate(family, me::Ucb1({.c = v, .pseudo_counts = true}), eval);
        });
        const auto textbook = me::evaluate(family, me::Ucb1{}, eval);
        const auto [eps, e] = tuned(grid(0.0, 1.0, 0.1), [&](double v) {
          return me::evaluate(family, me::EpsilonGreedyBandit({.epsilon = v}), eval);
        });
        const auto greedy = me::evaluate(family, me::GreedyBandit{}, eval);
        fmt::print(
            "| {} | {} | {} | {} | {}, c = {:.1f} | {} | {}, eps = {:.1f} | {} | {} | {} | {} |\n",
            k, n, show(random, p.random), show(ts, p.ts), show(ucb, p.ucb1), c, cell(textbook),
            show(eps, p.eps_greedy), e, show(greedy, p.greedy),
            have ? fmt::format("{:.1f}", p.gittins) : "-",
            have ? fmt::format("{:.1f}", p.ots) : "-", have ? fmt::format("{:.1f}", p.rl2) : "-");
        std::fflush(stdout);
        if (!curves.empty()) {
          double best = 0.0;  // mean over the same bandits of the best arm's probability
          for (ml::Index m = 0; m < trials; ++m) {
            best += family.make(seed, me::Split::kTest, static_cast<std::uint64_t>(m)).best_mean();
          }
          write_regret(std::filesystem::path(curves) / fmt::format("bandit_k{}_n{}.csv", k, n),
                       best / static_cast<double>(trials), 1,
                       {{"random", &random},
                        {"thompson", &ts},
                        {fmt::format("ucb1_c{:.1f}", c), &ucb},
                        {"ucb1_textbook", &textbook},
                        {fmt::format("eps_greedy_{:.1f}", e), &eps},
                        {"greedy", &greedy}});
        }
      }
    }
    fmt::print("\n");
  }

  if (!episodes.empty() && episodes.front() > 0) {
    fmt::print("Table 2, random tabular MDPs (10 states, 5 actions, horizon 10)\n\n");
    fmt::print(
        "| episodes | Random | PSRL | Greedy (certainty equivalent) | eps-greedy (tuned eps) "
        "| PSRL, prior mean 1 | optimal | paper OPSRL | paper UCRL2 | paper BEB | "
        "paper RL^2 |\n");
    fmt::print("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int n : episodes) {
      const me::TabularMdps family({.episodes = n});
      const auto it = kPaperMdps.find(n);
      const bool have = it != kPaperMdps.end();
      const PaperMdpRow p = have ? it->second : PaperMdpRow{};
      auto show = [&](const me::Score& s, double paper) { return have ? cell(s, paper) : cell(s); };
      const auto random = me::evaluate(family, me::RandomAgent{}, eval);
      const auto psrl = me::evaluate(family, me::Psrl{}, eval);
      const auto greedy = me::evaluate(family, me::CertaintyEquivalent{}, eval);
      const auto [eps, e] = tuned(grid(0.1, 1.0, 0.1), [&](double v) {
        return me::evaluate(family, me::CertaintyEquivalent({.epsilon = v}), eval);
      });
      const auto psrl1 = me::evaluate(family, me::Psrl({.prior = {.reward_mean = 1.0}}), eval);
      // The expected return of the optimal policy of each MDP, over the same MDPs.
      std::vector<double> optimal(static_cast<std::size_t>(trials));
      double optimal_episode = 0.0;
      for (ml::Index m = 0; m < trials; ++m) {
        const double v = family.make(seed, me::Split::kTest, static_cast<std::uint64_t>(m))
                             .optimal_episode_value();
        optimal[static_cast<std::size_t>(m)] = n * v;
        optimal_episode += v / static_cast<double>(trials);
      }
      if (!curves.empty()) {
        write_regret(std::filesystem::path(curves) / fmt::format("mdp_n{}.csv", n), optimal_episode,
                     family.spec().horizon,
                     {{"random", &random},
                      {"psrl", &psrl},
                      {"greedy", &greedy},
                      {fmt::format("eps_greedy_{:.1f}", e), &eps},
                      {"psrl_prior_mean_1", &psrl1}});
      }
      fmt::print(
          "| {} | {} | {} | {} | {}, eps = {:.1f} | {} | {} | {} | {} | {} | {} |\n", n,
          show(random, p.random), show(psrl, p.psrl), show(greedy, p.greedy),
          show(eps, p.eps_greedy), e, cell(psrl1),
          cell(me::Score::from_returns(std::move(optimal))),
          have ? fmt::format("{:.1f}", p.opsrl) : "-", have ? fmt::format("{:.1f}", p.ucrl2) : "-",
          have ? fmt::format("{:.1f}", p.beb) : "-", have ? fmt::format("{:.1f}", p.rl2) : "-");
      std::fflush(stdout);
    }
    fmt::print("\n");
  }
  fmt::print("wall time {:.1f} s on {} threads\n",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), threads);
  return 0;
}
