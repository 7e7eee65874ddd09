// Tests of BernoulliBandit and the BernoulliBandits family: arm means, outcomes,
// seeding by (seed, split, index) and episode boundaries.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <metalearn/env.hpp>
#include <set>
#include <vector>

namespace ml = metalearn;
namespace me = metalearn::env;

TEST(BernoulliBandits, ArmMeansAreUniformOnTheUnitInterval) {
  me::BernoulliBandits family({.arms = 5, .pulls = 10});
  std::vector<double> all;
  for (std::uint64_t i = 0; i < 4000; ++i) {
    const auto bandit = family.make(3, me::Split::kTrain, i);
    ASSERT_EQ(bandit.probabilities().size(), 5u);
    for (double p : bandit.probabilities()) {
      ASSERT_GE(p, 0.0);
      ASSERT_LE(p, 1.0);
      all.push_back(p);
    }
  }
  // 20,000 draws of U[0, 1]: mean 1/2 (sd 0.002), variance 1/12, and every tenth of the
  // interval holds a tenth of them (sd 0.0021).
  double mean = 0.0;
  for (double p : all) mean += p;
  mean /= static_cast<double>(all.size());
  double var = 0.0;
  for (double p : all) var += (p - mean) * (p - mean);
  var /= static_cast<double>(all.size() - 1);
  EXPECT_NEAR(mean, 0.5, 0.01);
  EXPECT_NEAR(var, 1.0 / 12.0, 0.003);
  std::vector<int> bins(10, 0);
  for (double p : all) ++bins[std::min<std::size_t>(9, static_cast<std::size_t>(p * 10.0))];
  for (int b : bins)
    EXPECT_NEAR(static_cast<double>(b) / static_cast<double>(all.size()), 0.1, 0.01);
  // The best of 5 arms has mean 5/6.
  double best = 0.0;
  for (std::uint64_t i = 0; i < 4000; ++i) best += family.make(3, me::Split::kTrain, i).best_mean();
  EXPECT_NEAR(best / 4000.0, 5.0 / 6.0, 0.01);
}

TEST(BernoulliBandits, PullsAreBernoulliWithTheArmsProbability) {
  me::BernoulliBandit bandit({0.1, 0.5, 0.9}, 10, ml::Generator(5));
  for (ml::Index arm = 0; arm < 3; ++arm) {
    double wins = 0.0;
    for (int i = 0; i < 20000; ++i) {
      bandit.reset();
      const me::Step s = bandit.step(arm);
      ASSERT_TRUE(s.reward == 0.0 || s.reward == 1.0);
      ASSERT_EQ(s.observation, 0);
      wins += s.reward;
    }
    // sd of the rate <= 0.0036
    EXPECT_NEAR(wins / 20000.0, bandit.probabilities()[static_cast<std::size_t>(arm)], 0.015);
  }
}

namespace {

std::vector<double> pulls_of(me::BernoulliBandit bandit, int n) {
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    bandit.reset();
    out.push_back(bandit.step(i % bandit.spec().actions).reward);
  }
  return out;
}

}  // namespace

TEST(BernoulliBandits, SeedSplitAndIndexDetermineTheBandit) {
  me::BernoulliBandits family({.arms = 4, .pulls = 50});
  const auto a = family.make(11, me::Split::kTrain, 7);
  const auto b = family.make(11, me::Split::kTrain, 7);
  EXPECT_EQ(a.probabilities(), b.probabilities());
  EXPECT_EQ(pulls_of(a, 200), pulls_of(b, 200));  // the outcome stream too
  // make() is sample() on the generator of environment_seed(seed, split, index).
  ml::Generator gen(me::environment_seed(11, me::Split::kTrain, 7));
  EXPECT_EQ(family.sample(gen).probabilities(), a.probabilities());
  EXPECT_NE(family.make(11, me::Split::kTrain, 8).probabilities(), a.probabilities());
  EXPECT_NE(family.make(12, me::Split::kTrain, 7).probabilities(), a.probabilities());
  // Splits are disjoint streams: no bandit of one split is a bandit of another.
  std::set<std::vector<double>> seen;
  for (auto split : {me::Split::kTrain, me::Split::kValidation, me::Split::kTest}) {
    for (std::uint64_t i = 0; i < 300; ++i) {
      EXPECT_TRUE(seen.insert(family.make(11, split, i).probabilities()).second)
          << "split " << static_cast<int>(split) << " index " << i;
    }
  }
}

TEST(BernoulliBandits, EveryPullIsOneEpisode) {
  me::BernoulliBandits family({.arms = 3, .pulls = 7});
  EXPECT_EQ(family.spec(),
            (me::EnvSpec{.observations = 1, .actions = 3, .horizon = 1, .episodes = 7}));
  auto bandit = family.make(0, me::Split::kTest, 0);
  EXPECT_EQ(bandit.spec(), family.spec());
  EXPECT_THROW((void)bandit.step(0), ml::ValueError);  // no episode started
  EXPECT_EQ(bandit.reset(), 0);
  EXPECT_TRUE(bandit.step(2).done);
  EXPECT_THROW((void)bandit.step(0), ml::ValueError);  // the pull ended the episode
  bandit.reset();
  EXPECT_THROW((void)bandit.step(3), ml::ValueError);
  EXPECT_THROW((void)bandit.step(-1), ml::ValueError);
}

TEST(BernoulliBandits, RejectsBadOptions) {
  EXPECT_THROW(me::BernoulliBandits({.arms = 0, .pulls = 10}), ml::ValueError);
  EXPECT_THROW(me::BernoulliBandits({.arms = 2, .pulls = 0}), ml::ValueError);
  EXPECT_THROW(me::BernoulliBandit({0.5, 1.5}, 3, ml::Generator(0)), ml::ValueError);
  EXPECT_THROW(me::BernoulliBandit({}, 3, ml::Generator(0)), ml::ValueError);
}
