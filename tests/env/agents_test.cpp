// Tests of the baseline agents and the evaluator: the draws they use, their rules on
// hand-made cases, that each beats random where it should, that evaluation does not
// depend on the thread count, and that the random, greedy and Thompson bandit baselines
// and the random, PSRL and greedy MDP baselines reproduce Duan et al. (2016), Tables 1
// and 2.

#include <gtest/gtest.h>

#include <cmath>
#include <metalearn/env.hpp>
#include <vector>

namespace ml = metalearn;
namespace me = metalearn::env;

TEST(Distributions, GammaBetaDirichletMoments) {
  ml::Generator gen(1);
  for (double shape : {0.3, 1.0, 2.5, 10.0}) {
    double sum = 0.0;
    double sum_sq = 0.0;
    const int n = 40000;
    for (int i = 0; i < n; ++i) {
      const double x = me::sample_gamma(gen, shape);
      ASSERT_GE(x, 0.0);
      sum += x;
      sum_sq += x * x;
    }
    const double mean = sum / n;
    EXPECT_NEAR(mean, shape, 0.03 * std::max(1.0, shape)) << "shape " << shape;
    EXPECT_NEAR(sum_sq / n - mean * mean, shape, 0.08 * std::max(1.0, shape)) << "shape " << shape;
  }
  double beta_sum = 0.0;
  for (int i = 0; i < 40000; ++i) beta_sum += me::sample_beta(gen, 2.0, 6.0);
  EXPECT_NEAR(beta_sum / 40000.0, 0.25, 0.005);
  std::vector<double> out(3);
  std::vector<double> mean(3, 0.0);
  const std::vector<double> alpha = {1.0, 2.0, 5.0};
  for (int i = 0; i < 20000; ++i) {
    me::sample_dirichlet(gen, alpha, out);
    ASSERT_NEAR(out[0] + out[1] + out[2], 1.0, 1e-12);
    for (std::size_t j = 0; j < 3; ++j) mean[j] += out[j] / 20000.0;
  }
  for (std::size_t j = 0; j < 3; ++j) EXPECT_NEAR(mean[j], alpha[j] / 8.0, 0.006);
  EXPECT_THROW((void)me::sample_gamma(gen, 0.0), ml::ValueError);
  EXPECT_THROW(me::sample_dirichlet(gen, alpha, std::span<double>(out).first(2)), ml::ValueError);
}

TEST(BanditAgents, RulesOnAHandMadeHistory) {
  const me::EnvSpec spec{.observations = 1, .actions = 3, .horizon = 1, .episodes = 10};
  // Arm 0: 1 success in 1 pull; arm 1: 3 in 4; arm 2: never pulled.
  auto feed = [](auto& agent) {
    agent.observe(0, 0, 1.0, 0, true);
    for (double r : {1.0, 1.0, 0.0, 1.0}) agent.observe(0, 1, r, 0, true);
  };
  me::GreedyBandit greedy;
  greedy.begin_trial(spec, ml::Generator(0));
  EXPECT_EQ(greedy.act(0), 0);  // all means 1/2: the lowest index
  feed(greedy);
  EXPECT_EQ(greedy.act(0), 0);  // 2/3 against 4/6 = 2/3 and 1/2: tie, lowest index
  greedy.observe(0, 1, 1.0, 0, true);
  EXPECT_EQ(greedy.act(0), 1);  // 5/7 > 2/3
  greedy.begin_trial(spec, ml::Generator(0));
  EXPECT_EQ(greedy.act(0), 0);  // a new trial forgets
  me::GreedyBandit optimistic({.prior = {.alpha = 5.0, .beta = 1.0}});
  optimistic.begin_trial(spec, ml::Generator(0));
  feed(optimistic);
  // Beta(5, 1): arm 0 6/7, arm 1 8/10, arm 2 (never pulled) 5/6.
  EXPECT_EQ(optimistic.act(0), 0);
  optimistic.observe(0, 0, 0.0, 0, true);  // arm 0: 6/8 < 5/6
  EXPECT_EQ(optimistic.act(0), 2);
  // Textbook UCB1 pulls the unpulled arm first, then uses mean + sqrt(2 ln t / n).
  me::Ucb1 ucb;
  ucb.begin_trial(spec, ml::Generator(0));
  feed(ucb);
  EXPECT_EQ(ucb.act(0), 2);
  ucb.observe(0, 2, 0.0, 0, true);
  // t = 6: arm 0: 1 + sqrt(2 ln 6) = 2.89; arm 1: 0.75 + sqrt(ln 6 / 2) = 1.70; arm 2: 1.89.
  EXPECT_EQ(ucb.act(0), 0);
  // With c = 0 and pseudo counts it is the greedy rule.
  me::Ucb1 ucb_greedy({.c = 0.0, .pseudo_counts = true});
  ucb_greedy.begin_trial(spec, ml::Generator(0));
  feed(ucb_greedy);
  ucb_greedy.observe(0, 1, 1.0, 0, true);
  EXPECT_EQ(ucb_greedy.act(0), 1);
  EXPECT_THROW(me::EpsilonGreedyBandit({.epsilon = 1.5}), ml::ValueError);
  EXPECT_THROW(me::Ucb1({.c = -1.0}), ml::ValueError);
  EXPECT_THROW(me::ThompsonSampling({.prior = {.alpha = 0.0}}), ml::ValueError);
}

TEST(BanditAgents, ThompsonSamplingFollowsThePosterior) {
  const me::EnvSpec spec{.observations = 1, .actions = 2, .horizon = 1, .episodes = 10};
  me::ThompsonSampling ts;
  ts.begin_trial(spec, ml::Generator(3));
  for (int i = 0; i < 20; ++i) ts.observe(0, 0, 1.0, 0, true);  // Beta(21, 1) against Beta(1, 1)
  int zeros = 0;
  for (int i = 0; i < 2000; ++i) zeros += ts.act(0) == 0 ? 1 : 0;
  // P(Beta(21, 1) > U) = 21 / 22 = 0.955
  EXPECT_NEAR(zeros / 2000.0, 21.0 / 22.0, 0.02);
}

namespace {

template <class F, class A>
me::Score score(const F& family, const A& agent, ml::Index trials, std::size_t threads = 2) {
  return me::evaluate(family, agent, {.trials = trials, .seed = 1, .threads = threads});
}

}  // namespace

TEST(Evaluate, SameBitsForAnyThreadCountAndSeedDependent) {
  me::BernoulliBandits bandits({.arms = 5, .pulls = 20});
  const auto one = score(bandits, me::ThompsonSampling{}, 300, 1);
  const auto two = score(bandits, me::ThompsonSampling{}, 300, 2);
  EXPECT_EQ(one.returns, two.returns);
  EXPECT_EQ(one.mean, two.mean);
  EXPECT_EQ(one.mean_rewards, two.mean_rewards);
  ASSERT_EQ(one.mean_rewards.size(), 20u);
  ASSERT_EQ(one.trials, 300);
  me::TabularMdps mdps({.episodes = 3});
  EXPECT_EQ(score(mdps, me::Psrl{}, 50, 1).returns, score(mdps, me::Psrl{}, 50, 2).returns);
  const auto other = me::evaluate(bandits, me::ThompsonSampling{}, {.trials = 300, .seed = 2});
  EXPECT_NE(other.returns, one.returns);
  // The returns are the per-step rewards summed; the interval is 1.96 standard errors.
  double sum = 0.0;
  for (double r : one.mean_rewards) sum += r;
  EXPECT_NEAR(sum, one.mean, 1e-9);
  const auto s = me::Score::from_returns({1.0, 2.0, 3.0, 4.0});
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_NEAR(s.ci95, 1.96 * std::sqrt(5.0 / 3.0) / 2.0, 1e-12);
  EXPECT_THROW((void)me::evaluate(bandits, me::RandomAgent{}, {.trials = 0}), ml::ValueError);
}

TEST(Evaluate, EveryBaselineBeatsRandom) {
  // k = 5, n = 100: random averages 50; each learning rule gets well above 60.
  me::BernoulliBandits bandits({.arms = 5, .pulls = 100});
  const double random = score(bandits, me::RandomAgent{}, 500).mean;
  EXPECT_NEAR(random, 50.0, 2.0);
  EXPECT_GT(score(bandits, me::GreedyBandit{}, 500).mean, random + 15.0);
  EXPECT_GT(score(bandits, me::EpsilonGreedyBandit{}, 500).mean, random + 15.0);
  EXPECT_GT(score(bandits, me::Ucb1{}, 500).mean, random + 10.0);
  EXPECT_GT(score(bandits, me::Ucb1({.c = 0.2, .pseudo_counts = true}), 500).mean, random + 15.0);
  EXPECT_GT(score(bandits, me::ThompsonSampling{}, 500).mean, random + 15.0);
  // MDPs, 10 episodes: random averages 100 (reward means have mean 1, 100 steps).
  me::TabularMdps mdps;
  const auto mdp_random = score(mdps, me::RandomAgent{}, 300);
  EXPECT_NEAR(mdp_random.mean, 100.0, 3.0 * mdp_random.ci95);
  EXPECT_GT(score(mdps, me::Psrl{}, 300).mean, mdp_random.mean + 20.0);
  EXPECT_GT(score(mdps, me::CertaintyEquivalent{}, 300).mean, mdp_random.mean + 20.0);
  EXPECT_GT(score(mdps, me::CertaintyEquivalent({.epsilon = 0.1}), 300).mean,
            mdp_random.mean + 20.0);
}

// Duan et al. (2016), "RL^2: Fast Reinforcement Learning via Slow Reinforcement
// Learning", Table 1 (mean total reward per trial of Bernoulli bandits, 1,000 trials)
// and Table 2 (random tabular MDPs). The baselines' rules are those of the paper's
// released baseline code: Beta(1, 1) posteriors for greedy and Thompson sampling,
// TabulaRL's PSRL and greedy agents (Dirichlet(1), N(0, 1) prior on mean rewards).
struct PaperBandit {
  ml::Index arms;
  ml::Index pulls;
  double random;
  double greedy;
  double thompson;
};

TEST(PaperBaselines, BanditsTable1) {
  const PaperBandit rows[] = {
      {5, 10, 5.0, 6.6, 5.7},
      {10, 10, 5.0, 6.6, 5.5},
      {5, 100, 49.9, 74.8, 74.7},
      {10, 100, 49.9, 77.1, 76.7},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(testing::Message() << "k = " << row.arms << ", n = " << row.pulls);
    me::BernoulliBandits family({.arms = row.arms, .pulls = row.pulls});
    const double tolerance = row.pulls == 10 ? 0.2 : 1.0;
    // 95% intervals of about 0.04 at n = 10; at n = 100 about 0.3 for random, 0.2 for
    // greedy (k = 10 measures 77.9 with 200,000 trials, 0.8 from the paper's 77.1) and
    // 0.4 for Thompson sampling.
    const bool short_trials = row.pulls == 10;
    EXPECT_NEAR(score(family, me::RandomAgent{}, short_trials ? 10000 : 5000).mean, row.random,
                tolerance);
    EXPECT_NEAR(score(family, me::GreedyBandit{}, short_trials ? 10000 : 20000).mean, row.greedy,
                tolerance);
    EXPECT_NEAR(score(family, me::ThompsonSampling{}, short_trials ? 10000 : 4000).mean,
                row.thompson, tolerance);
  }
}

TEST(PaperBaselines, TabularMdpsTable2TenEpisodes) {
  me::TabularMdps family;  // 10 states, 5 actions, horizon 10, 10 episodes
  const auto random = score(family, me::RandomAgent{}, 1000);
  const auto psrl = score(family, me::Psrl{}, 1000);
  const auto greedy = score(family, me::CertaintyEquivalent{}, 1000);
  EXPECT_NEAR(random.mean, 100.1, 0.05 * 100.1);
  EXPECT_NEAR(psrl.mean, 138.1, 0.05 * 138.1);
  EXPECT_NEAR(greedy.mean, 134.8, 0.05 * 134.8);
}

TEST(MdpAgents, PlanPerEpisodeAndRejectMisuse) {
  const me::EnvSpec spec{.observations = 3, .actions = 2, .horizon = 2, .episodes = 4};
  me::Psrl psrl;
  EXPECT_THROW((void)psrl.act(0), ml::ValueError);  // no trial
  psrl.begin_trial(spec, ml::Generator(1));
  EXPECT_THROW((void)psrl.act(0), ml::ValueError);  // no episode
  psrl.begin_episode();
  EXPECT_THROW((void)psrl.act(3), ml::ValueError);  // state out of range
  const ml::Index a = psrl.act(0);
  EXPECT_TRUE(a == 0 || a == 1);
  psrl.observe(0, a, 1.0, 2, false);
  psrl.observe(2, psrl.act(2), 0.5, 1, true);
  EXPECT_THROW((void)psrl.act(1), ml::ValueError);                  // past the horizon
  EXPECT_THROW(psrl.observe(0, 2, 0.0, 0, false), ml::ValueError);  // action out of range

  // Certainty-equivalent planning on a posterior that has seen one rewarding action: with
  // a prior mean of 0 it takes that action again.
  me::CertaintyEquivalent ce;
  ce.begin_trial(spec, ml::Generator(2));
  ce.begin_episode();
  ce.observe(0, 1, 5.0, 0, false);
  ce.observe(0, 1, 5.0, 0, true);
  ce.begin_episode();
  EXPECT_EQ(ce.act(0), 1);
  EXPECT_THROW(me::CertaintyEquivalent({.epsilon = -0.5}), ml::ValueError);
  EXPECT_THROW(me::Psrl({.prior = {.reward_precision = 0.0}}), ml::ValueError);

  // The posterior: Normal update of the reward mean, Dirichlet counts.
  me::TabularPosterior post(3, 2, {});
  post.update(0, 1, 2.0, 2);
  post.update(0, 1, 4.0, 2);
  std::vector<double> r;
  std::vector<double> p;
  post.mean(r, p);
  EXPECT_DOUBLE_EQ(r[1], 6.0 / 3.0);          // (0 * 1 + 2 + 4) / (1 + 2)
  EXPECT_DOUBLE_EQ(p[1 * 3 + 2], 3.0 / 5.0);  // Dirichlet(1, 1, 3)
  EXPECT_EQ(post.visits(0, 1), 2);
  EXPECT_EQ(post.visits(1, 0), 0);
}
