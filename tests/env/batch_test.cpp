// Tests of EnvBatch: stepping a batch is stepping each environment alone, and the
// episode and trial boundaries (done flags, resets, trial_done).

#include <gtest/gtest.h>

#include <metalearn/env.hpp>
#include <vector>

namespace ml = metalearn;
namespace me = metalearn::env;

namespace {

struct Trace {
  std::vector<ml::Index> observations;
  std::vector<double> rewards;
  std::vector<int> dones;
  bool operator==(const Trace&) const = default;
};

/// Random actions for `envs` environments over a trial, from their own generator.
std::vector<std::vector<ml::Index>> random_actions(const me::EnvSpec& spec, ml::Index envs,
                                                   std::uint64_t seed) {
  ml::Generator gen(seed);
  std::vector<std::vector<ml::Index>> out(static_cast<std::size_t>(spec.trial_steps()));
  for (auto& step : out) {
    for (ml::Index i = 0; i < envs; ++i) step.push_back(gen.randint(0, spec.actions - 1));
  }
  return out;
}

/// Steps every environment of the batch through a trial, one at a time, with reset
/// after each episode.
template <class F>
std::vector<Trace> one_by_one(const F& family, ml::Index envs,
                              const std::vector<std::vector<ml::Index>>& actions) {
  std::vector<Trace> traces(static_cast<std::size_t>(envs));
  for (ml::Index i = 0; i < envs; ++i) {
    auto env = family.make(9, me::Split::kTrain, 100 + static_cast<std::uint64_t>(i));
    auto& tr = traces[static_cast<std::size_t>(i)];
    tr.observations.push_back(env.reset());
    for (std::size_t t = 0; t < actions.size(); ++t) {
      me::Step s = env.step(actions[t][static_cast<std::size_t>(i)]);
      if (s.done && t + 1 < actions.size()) s.observation = env.reset();
      tr.observations.push_back(s.observation);
      tr.rewards.push_back(s.reward);
      tr.dones.push_back(s.done ? 1 : 0);
    }
  }
  return traces;
}

template <class F>
void expect_batch_equals_one_by_one(const F& family) {
  const ml::Index envs = 6;
  const auto actions = random_actions(family.spec(), envs, 4);
  auto batch = me::make_batch(family, 9, me::Split::kTrain, 100, envs);
  ASSERT_EQ(batch.size(), envs);
  std::vector<Trace> traces(static_cast<std::size_t>(envs));
  const auto& first = batch.reset();
  for (ml::Index i = 0; i < envs; ++i) {
    traces[static_cast<std::size_t>(i)].observations.push_back(first[static_cast<std::size_t>(i)]);
  }
  for (std::size_t t = 0; t < actions.size(); ++t) {
    ASSERT_FALSE(batch.trial_done());
    const me::BatchStep& s = batch.step(actions[t]);
    for (std::size_t i = 0; i < static_cast<std::size_t>(envs); ++i) {
      traces[i].observations.push_back(s.observations[i]);
      traces[i].rewards.push_back(s.rewards[i]);
      traces[i].dones.push_back(s.dones[i]);
    }
  }
  EXPECT_TRUE(batch.trial_done());
  EXPECT_EQ(traces, one_by_one(family, envs, actions));
}

}  // namespace

TEST(EnvBatch, BanditBatchStepsAsEachBanditAlone) {
  expect_batch_equals_one_by_one(me::BernoulliBandits({.arms = 5, .pulls = 20}));
}

TEST(EnvBatch, MdpBatchStepsAsEachMdpAlone) {
  expect_batch_equals_one_by_one(me::TabularMdps({.horizon = 4, .episodes = 3}));
}

TEST(EnvBatch, DoneFlagsMarkEpisodesAndTrialDoneTheLastStep) {
  me::TabularMdps family(
      {.states = 3, .actions = 2, .horizon = 4, .episodes = 3, .start_state = 1});
  auto batch = me::make_batch(family, 2, me::Split::kTest, 0, 5);
  const std::vector<ml::Index> actions(5, 1);
  EXPECT_THROW((void)batch.step(actions), ml::ValueError);  // no trial started
  for (int trial = 0; trial < 2; ++trial) {
    for (ml::Index o : batch.reset()) EXPECT_EQ(o, 1);
    for (int t = 1; t <= 12; ++t) {
      const me::BatchStep& s = batch.step(actions);
      const bool episode_end = t % 4 == 0;
      for (std::size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(s.dones[i], episode_end ? 1 : 0) << "step " << t;
        // After an episode ends inside the trial, the next episode starts in state 1.
        if (episode_end && t < 12) {
          EXPECT_EQ(s.observations[i], 1);
        }
      }
      EXPECT_EQ(s.trial_done, t == 12);
      EXPECT_EQ(batch.steps(), t);
    }
    EXPECT_THROW((void)batch.step(actions), ml::ValueError);  // the trial is over
  }
  EXPECT_THROW((void)batch.step(std::vector<ml::Index>(4, 0)), ml::ValueError);
}

TEST(EnvBatch, BanditTrialIsPullsEpisodesOfOneStep) {
  auto batch =
      me::make_batch(me::BernoulliBandits({.arms = 2, .pulls = 3}), 0, me::Split::kTrain, 0, 4);
  batch.reset();
  const std::vector<ml::Index> actions = {0, 1, 0, 1};
  for (int t = 1; t <= 3; ++t) {
    const me::BatchStep& s = batch.step(actions);
    for (auto d : s.dones) EXPECT_EQ(d, 1);
    EXPECT_EQ(s.trial_done, t == 3);
  }
}

TEST(EnvBatch, RejectsEnvironmentsOfDifferentSpecs) {
  std::vector<me::BernoulliBandit> envs;
  envs.push_back(me::BernoulliBandit({0.5, 0.5}, 3, ml::Generator(0)));
  envs.push_back(me::BernoulliBandit({0.5, 0.5, 0.5}, 3, ml::Generator(1)));
  EXPECT_THROW(me::EnvBatch<me::BernoulliBandit>(std::move(envs)), ml::ValueError);
  EXPECT_THROW(me::EnvBatch<me::BernoulliBandit>({}), ml::ValueError);
  EXPECT_THROW((void)me::make_batch(me::BernoulliBandits{}, 0, me::Split::kTrain, 0, 0),
               ml::ValueError);
}
