// Tests of TabularMdp and the TabularMdps family: transition rows, reward statistics,
// seeding, horizon and the dynamic-programming planner.

#include <gtest/gtest.h>

#include <cmath>
#include <metalearn/env.hpp>
#include <set>
#include <vector>

namespace ml = metalearn;
namespace me = metalearn::env;

TEST(TabularMdps, TransitionRowsAreDirichletOneDistributions) {
  me::TabularMdps family;  // 10 states, 5 actions
  double sum = 0.0;
  double sum_sq = 0.0;
  std::size_t n = 0;
  for (std::uint64_t i = 0; i < 200; ++i) {
    const auto mdp = family.make(1, me::Split::kTrain, i);
    for (ml::Index s = 0; s < 10; ++s) {
      for (ml::Index a = 0; a < 5; ++a) {
        const auto row = mdp.transition(s, a);
        ASSERT_EQ(row.size(), 10u);
        double total = 0.0;
        for (double p : row) {
          ASSERT_GE(p, 0.0);
          total += p;
          sum += p;
          sum_sq += p * p;
          ++n;
        }
        ASSERT_NEAR(total, 1.0, 1e-12);
      }
    }
  }
  // Dirichlet(1, ..., 1) over 10 states: each entry has mean 1/10 and variance
  // 9 / (100 * 11) (100,000 entries).
  const double mean = sum / static_cast<double>(n);
  const double var = sum_sq / static_cast<double>(n) - mean * mean;
  EXPECT_NEAR(mean, 0.1, 1e-9);  // rows sum to one
  EXPECT_NEAR(var, 9.0 / 1100.0, 0.0004);
}

TEST(TabularMdps, MeanRewardsAreNormalAroundOne) {
  me::TabularMdps family;
  std::vector<double> r;
  for (std::uint64_t i = 0; i < 400; ++i) {
    const auto mdp = family.make(2, me::Split::kTrain, i);
    r.insert(r.end(), mdp.reward_means().begin(), mdp.reward_means().end());
  }
  double mean = 0.0;
  for (double x : r) mean += x;
  mean /= static_cast<double>(r.size());
  double var = 0.0;
  double below = 0.0;
  for (double x : r) {
    var += (x - mean) * (x - mean);
    if (x < 1.0 - 1.0) below += 1.0;  // P(N(1, 1) < 0) = 0.1587
  }
  var /= static_cast<double>(r.size() - 1);
  EXPECT_NEAR(mean, 1.0, 0.05);  // 20,000 draws: sd 0.007
  EXPECT_NEAR(var, 1.0, 0.05);
  EXPECT_NEAR(below / static_cast<double>(r.size()), 0.1587, 0.01);
}

TEST(TabularMdps, StepsDrawRewardNoiseAndTransitionsFromTheModel) {
  me::TabularMdps family({.states = 4, .actions = 2, .horizon = 1, .episodes = 1});
  auto mdp = family.make(3, me::Split::kTest, 0);
  std::vector<double> next(4, 0.0);
  double sum = 0.0;
  double sum_sq = 0.0;
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(mdp.reset(), 0);
    const me::Step s = mdp.step(1);
    ASSERT_TRUE(s.done);
    next[static_cast<std::size_t>(s.observation)] += 1.0;
    sum += s.reward;
    sum_sq += s.reward * s.reward;
  }
  const double mean = sum / n;
  EXPECT_NEAR(mean, mdp.reward_mean(0, 1), 0.02);    // sd 0.005
  EXPECT_NEAR(sum_sq / n - mean * mean, 1.0, 0.03);  // N(0, 1) noise
  for (ml::Index j = 0; j < 4; ++j) {
    EXPECT_NEAR(next[static_cast<std::size_t>(j)] / n,
                mdp.transition(0, 1)[static_cast<std::size_t>(j)], 0.01);
  }
}

TEST(TabularMdps, EpisodesLastTheHorizonFromTheStartState) {
  me::TabularMdps family({.horizon = 10, .episodes = 3, .start_state = 4});
  EXPECT_EQ(family.spec(),
            (me::EnvSpec{.observations = 10, .actions = 5, .horizon = 10, .episodes = 3}));
  auto mdp = family.make(0, me::Split::kTrain, 0);
  EXPECT_THROW((void)mdp.step(0), ml::ValueError);  // no episode yet
  for (int episode = 0; episode < 3; ++episode) {
    EXPECT_EQ(mdp.reset(), 4);
    for (int t = 1; t <= 10; ++t) {
      const me::Step s = mdp.step(t % 5);
      EXPECT_EQ(s.done, t == 10);
      EXPECT_EQ(s.observation, mdp.state());
      EXPECT_EQ(mdp.step_in_episode(), t);
    }
    EXPECT_THROW((void)mdp.step(0), ml::ValueError);  // past the horizon
  }
  mdp.reset();
  EXPECT_THROW((void)mdp.step(5), ml::ValueError);
}

TEST(TabularMdps, SeedSplitAndIndexDetermineTheMdp) {
  me::TabularMdps family;
  const auto a = family.make(5, me::Split::kValidation, 3);
  const auto b = family.make(5, me::Split::kValidation, 3);
  EXPECT_EQ(a.reward_means(), b.reward_means());
  EXPECT_EQ(a.transitions(), b.transitions());
  auto run = [](me::TabularMdp m) {
    std::vector<double> out;
    m.reset();
    for (int t = 0; t < 10; ++t) {
      const me::Step s = m.step(t % 5);
      out.push_back(s.reward);
      out.push_back(static_cast<double>(s.observation));
    }
    return out;
  };
  EXPECT_EQ(run(a), run(b));
  ml::Generator gen(me::environment_seed(5, me::Split::kValidation, 3));
  EXPECT_EQ(family.sample(gen).reward_means(), a.reward_means());
  EXPECT_NE(family.make(5, me::Split::kValidation, 4).reward_means(), a.reward_means());
  std::set<std::vector<double>> seen;
  for (auto split : {me::Split::kTrain, me::Split::kValidation, me::Split::kTest}) {
    for (std::uint64_t i = 0; i < 100; ++i) {
      EXPECT_TRUE(seen.insert(family.make(5, split, i).reward_means()).second);
    }
  }
}

TEST(TabularMdps, RejectsBadOptionsAndModels) {
  EXPECT_THROW(me::TabularMdps({.states = 0}), ml::ValueError);
  EXPECT_THROW(me::TabularMdps({.states = 3, .start_state = 3}), ml::ValueError);
  EXPECT_THROW(me::TabularMdps({.reward_noise_std = -1.0}), ml::ValueError);
  EXPECT_THROW(me::TabularMdps({.transition_alpha = 0.0}), ml::ValueError);
  const me::TabularMdpOptions o{.states = 2, .actions = 1, .horizon = 2, .episodes = 1};
  EXPECT_THROW(me::TabularMdp(o, {0.0, 0.0}, {0.5, 0.6, 1.0, 0.0}, ml::Generator(0)),
               ml::ValueError);  // row 0 sums to 1.1
  EXPECT_THROW(me::TabularMdp(o, {0.0}, {0.5, 0.5, 1.0, 0.0}, ml::Generator(0)), ml::ValueError);
}

TEST(Planning, FiniteHorizonDynamicProgrammingOnAChain) {
  // Two states, two actions. Action 0 stays (reward 0 in state 0, 1 in state 1); action 1
  // moves to the other state with reward 0.5 - s / 2. From state 0 with 3 steps left: move
  // (0.5) then stay twice (2) = 2.5.
  const std::vector<double> r = {0.0, 0.5, 1.0, 0.0};
  const std::vector<double> p = {1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0};
  const auto q = me::finite_horizon_q(r, p, 2, 2, 3);
  ASSERT_EQ(q.size(), 12u);
  auto at = [&](int t, int s, int a) { return q[static_cast<std::size_t>((t * 2 + s) * 2 + a)]; };
  EXPECT_DOUBLE_EQ(at(2, 0, 0), 0.0);
  EXPECT_DOUBLE_EQ(at(2, 0, 1), 0.5);
  EXPECT_DOUBLE_EQ(at(2, 1, 0), 1.0);
  EXPECT_DOUBLE_EQ(at(0, 0, 1), 2.5);
  EXPECT_DOUBLE_EQ(at(0, 0, 0), 1.5);  // stay (0), then move and stay (0.5 + 1)
  EXPECT_DOUBLE_EQ(at(0, 1, 0), 3.0);
  const me::TabularMdpOptions o{.states = 2, .actions = 2, .horizon = 3, .episodes = 1};
  EXPECT_DOUBLE_EQ(me::TabularMdp(o, r, p, ml::Generator(0)).optimal_episode_value(), 2.5);
  EXPECT_THROW((void)me::finite_horizon_q(r, p, 2, 3, 3), ml::ValueError);
}
