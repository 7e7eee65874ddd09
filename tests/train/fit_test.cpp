// fit(): steps, evaluation, checkpoints and metrics in a run directory; a run resumed
// from its directory ends bit for bit where an uninterrupted run ends, with one
// metrics record per step; settings that differ from the checkpoint's are refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;
namespace fs = std::filesystem;

namespace {

struct Trainee {
  ml::Generator gen;
  ml::nn::MLP<float> model;
  alg::Maml<float> maml;
  ml::data::SinusoidTasks<float> family{{.shots = 5, .queries = 5}};
  ml::data::MetaBatchSampler<float> batches{family, {.batch = 3, .seed = 9}};
  ml::data::AnyTaskSampler<float> test{family};
  explicit Trainee(std::uint64_t seed)
      : gen(seed), model({1, 8, 8, 1}, gen), maml(model, alg::MamlOptions<float>{.seed = 2}) {}
};

std::vector<float> values(const alg::Maml<float>& m) {
  std::vector<float> out;
  for (const auto& [name, t] : m.meta_parameters()) {
    out.insert(out.end(), t.data(), t.data() + t.numel());
  }
  const auto s = m.state();
  for (const auto& [name, t] : s.optimizer->buffers) {
    out.insert(out.end(), t.data(), t.data() + t.numel());
  }
  return out;
}

// The "step" of every record of a metrics file that has `key`.
std::vector<long long> steps_with(const fs::path& path, const std::string& key) {
  std::vector<long long> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("\"" + key + "\"") == std::string::npos) continue;
    out.push_back(std::stoll(line.substr(line.find("\"step\":") + 7)));
  }
  return out;
}

class Fit : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("metalearn_fit_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(Fit, StepsEvaluatesLogsAndCheckpoints) {
  Trainee r(1);
  std::vector<std::int64_t> seen;
  const auto result = ml::train::fit(
      r.maml, r.batches,
      {.steps = 6,
       .eval_every = 3,
       .eval_episodes = 5,
       .final_eval_episodes = 7,
       .checkpoint_every = 2,
       .keep = {3},
       .log_every = 1,
       .run_dir = dir_,
       .on_step = [&](std::int64_t step, const alg::StepStats&) { seen.push_back(step); }},
      &r.test);
  EXPECT_EQ(result.start_step, 0);
  EXPECT_EQ(result.steps, 6);
  EXPECT_FALSE(result.out_of_time);
  ASSERT_TRUE(result.last_eval.has_value());
  EXPECT_EQ(result.last_eval->episodes, 7u);
  EXPECT_EQ(
      ml::io::load_checkpoint<float>(dir_ / "checkpoint_step3.safetensors").metadata.at("step"),
      "3");
  EXPECT_EQ(seen, (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(steps_with(dir_ / "metrics.jsonl", "meta_loss"),
            (std::vector<long long>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(steps_with(dir_ / "metrics.jsonl", "eval_mean"), (std::vector<long long>{3, 6}));
  const auto saved = ml::io::load_checkpoint<float>(dir_ / "checkpoint.safetensors");
  EXPECT_EQ(saved.metadata.at("step"), "6");
  EXPECT_EQ(saved.metadata.at("learner.steps"), "6");
  // The evaluation is the learner's own.
  EXPECT_EQ(result.last_eval->values, r.maml.evaluate(r.test, 7).values);
}

TEST_F(Fit, AResumedRunEndsWhereAnUninterruptedOneEnds) {
  Trainee straight(1);
  (void)ml::train::fit(straight.maml, straight.batches, {.steps = 7});

  const ml::train::FitOptions options{
      .steps = 7, .log_every = 1, .run_dir = dir_, .settings = {{"lr", "1e-3"}}};
  Trainee first(1);
  ml::train::FitOptions part = options;
  part.steps = 4;
  (void)ml::train::fit(first.maml, first.batches, part);
  // A record written after the checkpoint by a run that then died.
  std::ofstream(dir_ / "metrics.jsonl", std::ios::app) << "{\"step\":5,\"meta_loss\":1}\n";

  Trainee second(77);  // other initial values: everything comes from the checkpoint
  const auto result = ml::train::fit(second.maml, second.batches, options);
  EXPECT_EQ(result.start_step, 4);
  EXPECT_EQ(result.steps, 7);
  EXPECT_EQ(values(second.maml), values(straight.maml));
  EXPECT_EQ(steps_with(dir_ / "metrics.jsonl", "meta_loss"),
            (std::vector<long long>{1, 2, 3, 4, 5, 6, 7}));
  // Run again: nothing left to do.
  Trainee third(78);
  const auto done = ml::train::fit(third.maml, third.batches, options);
  EXPECT_EQ(done.start_step, 7);
  EXPECT_EQ(done.steps, 7);
  EXPECT_EQ(values(third.maml), values(straight.maml));
}

TEST_F(Fit, OtherSettingsAreRefusedAndResumeFalseStartsOver) {
  Trainee first(1);
  (void)ml::train::fit(first.maml, first.batches,
                       {.steps = 2, .run_dir = dir_, .settings = {{"ways", "5"}}});
  Trainee second(2);
  const auto before = values(second.maml);
  try {
    (void)ml::train::fit(second.maml, second.batches,
                         {.steps = 3, .run_dir = dir_, .settings = {{"ways", "20"}}});
    ADD_FAILURE() << "no error";
  } catch (const ml::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("ways = 5, this run has 20"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(values(second.maml), before);
  const auto fresh =
      ml::train::fit(second.maml, second.batches,
                     {.steps = 1, .run_dir = dir_, .resume = false, .settings = {{"ways", "20"}}});
  EXPECT_EQ(fresh.start_step, 0);
  EXPECT_EQ(ml::io::load_checkpoint<float>(dir_ / "checkpoint.safetensors").metadata.at("ways"),
            "20");
}

TEST_F(Fit, ATimeLimitStopsWithACheckpoint) {
  Trainee r(3);
  const auto result =
      ml::train::fit(r.maml, r.batches, {.steps = 50, .time_limit = 1e-9, .run_dir = dir_});
  EXPECT_TRUE(result.out_of_time);
  EXPECT_EQ(result.steps, 1);
  EXPECT_EQ(ml::io::load_checkpoint<float>(dir_ / "checkpoint.safetensors").metadata.at("step"),
            "1");
}

TEST_F(Fit, InvalidOptionsAreRefused) {
  Trainee r(4);
  EXPECT_THROW((void)ml::train::fit(r.maml, r.batches, {.steps = -1}), ml::ValueError);
  EXPECT_THROW((void)ml::train::fit(r.maml, r.batches, {.steps = 2, .eval_episodes = 3}),
               ml::ValueError);
  EXPECT_EQ(r.maml.steps_taken(), 0);
}

// RL^2 on bandits, the learner of environment families, through the same loop.
using Bandits = ml::env::BernoulliBandits;
using Rl2 = alg::Rl2<Bandits>;
static_assert(alg::EnvironmentMetaLearner<Rl2> &&
              alg::EnvironmentMetaLearner<alg::Rl2<ml::env::TabularMdps, double>>);
static_assert(!alg::MetaLearner<Rl2> && !alg::EnvironmentMetaLearner<alg::Maml<float>>);

std::vector<float> values(const Rl2& rl2) {
  std::vector<float> out;
  for (const auto& [name, t] : rl2.meta_parameters()) {
    out.insert(out.end(), t.data(), t.data() + t.numel());
  }
  return out;
}

Rl2 small_rl2(std::uint64_t init) {
  ml::Generator gen(init);
  return Rl2(Bandits({.arms = 3, .pulls = 4}), gen,
             {.hidden = 8, .trials = 8, .epochs = 1, .minibatches = 2, .seed = 5});
}

TEST_F(Fit, EnvironmentLearnersTrainEvaluateAndResumeBitForBit) {
  Rl2 whole = small_rl2(1);
  const ml::train::FitOptions options{
      .steps = 6, .eval_every = 3, .eval_episodes = 16, .log_every = 1, .run_dir = dir_ / "whole"};
  const auto result = ml::train::fit(whole, options);
  EXPECT_EQ(result.steps, 6);
  ASSERT_TRUE(result.last_eval.has_value());
  EXPECT_EQ(result.last_eval->episodes, 16U);
  EXPECT_EQ(result.last_eval->mean, whole.evaluate(16).mean);
  // Every step's record has the mean return and the learning rate; evaluations at 3, 6.
  const fs::path metrics = dir_ / "whole" / "metrics.jsonl";
  EXPECT_EQ(steps_with(metrics, "return"), (std::vector<long long>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(steps_with(metrics, "lr"), (std::vector<long long>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(steps_with(metrics, "eval_mean"), (std::vector<long long>{3, 6}));
  // And PPO's diagnostics (Rl2Stats::diagnostics()), with the values the step returned.
  for (const char* key :
       {"policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "grad_norm"}) {
    EXPECT_EQ(steps_with(metrics, key), (std::vector<long long>{1, 2, 3, 4, 5, 6})) << key;
  }
  Rl2 again = small_rl2(1);
  const alg::Rl2Stats s = again.meta_step();
  EXPECT_GT(s.grad_norm, 0.0);
  EXPECT_GT(s.entropy, 0.0);
  EXPECT_LE(s.entropy, std::log(3.0) + 1e-9);  // at most uniform over 3 arms
  EXPECT_GE(s.clip_fraction, 0.0);
  EXPECT_LE(s.clip_fraction, 1.0);
  {
    std::ifstream in(metrics);
    std::string line;  // step 1 of `whole`: the same step from the same start
    while (std::getline(in, line) && line.find("\"grad_norm\"") == std::string::npos) {
    }
    const auto at = line.find("\"grad_norm\":");
    ASSERT_NE(at, std::string::npos) << line;
    EXPECT_NEAR(std::stod(line.substr(at + 12)), s.grad_norm, 1e-9 * s.grad_norm) << line;
  }

  // Stopped after 4 steps, resumed by a learner with other initial weights: the same bits.
  Rl2 first = small_rl2(1);
  ml::train::FitOptions part = options;
  part.run_dir = dir_ / "resumed";
  part.steps = 4;
  EXPECT_EQ(ml::train::fit(first, part).steps, 4);
  Rl2 second = small_rl2(3);
  part.steps = 6;
  const auto resumed = ml::train::fit(second, part);
  EXPECT_EQ(resumed.start_step, 4);
  EXPECT_EQ(values(second), values(whole));
  EXPECT_EQ(steps_with(part.run_dir / "metrics.jsonl", "return"),
            (std::vector<long long>{1, 2, 3, 4, 5, 6}));
  EXPECT_THROW((void)ml::train::fit(second, {.steps = -1}), ml::ValueError);
}

}  // namespace
