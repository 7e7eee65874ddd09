// The `metalearn` command's machinery: its field tables cover every option, flags and
// config files set the same fields, and runs train, stop, resume bit for bit,
// evaluate and inspect.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <metalearn/io.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "src/cli/files.hpp"
#include "src/cli/report.hpp"
#include "src/cli/run.hpp"

namespace ml = metalearn;
namespace cli = metalearn::cli;
namespace fs = std::filesystem;

namespace {

/// An empty folder for one test.
fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("metalearn_cli_test_" + name);
  fs::remove_all(dir);
  return dir;
}

/// Parses `args` (after the program name) into `given` with the config's flags.
void parse(const cli::RunConfig& config, cli::GivenFlags& given, std::vector<std::string> args) {
  CLI::App app("test");
  cli::add_config_flags(app, config, given);
  std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
  app.parse(args);
}

/// A short run on sinusoid tasks, with small evaluations.
cli::RunConfig short_sinusoid(const std::string& algorithm, std::int64_t steps) {
  cli::RunConfig c = cli::default_config(algorithm, "sinusoid");
  c.task.meta_batch = 4;
  c.run = {.steps = steps,
           .eval_every = 5,
           .eval_episodes = 4,
           .final_eval_episodes = 6,
           .log_every = 1};
  return c;
}

cli::Reporting quiet_reporting(std::ostream& out) {
  return cli::Reporting{.out = &out, .progress = false, .stop = {}};
}

std::vector<double> stored_values(const fs::path& file) {
  std::vector<double> v;
  for (const auto& t : ml::io::inspect_safetensors(file).tensors) {
    v.insert(v.end(), t.values.begin(), t.values.end());
  }
  return v;
}

/// Small networks for a Neural Process run of the tests.
void shrink_neural_process(cli::RunConfig& c) {
  c.options["decoder"] = cli::Json::array({16});
  if (c.algorithm == "cnp") {
    c.options["encoder"] = cli::Json::array({16, 16});
  } else {
    c.options["deterministic"] = cli::Json::array({16});
    c.options["latent_encoder"] = cli::Json::array({16});
    c.options["latent"] = 8;
    c.options["attention_mlp"] = cli::Json::array({16});
    c.options["likelihood_samples"] = 3;
  }
}

}  // namespace

TEST(FieldTables, CoverEveryFieldOfTheirStructs) {
  EXPECT_EQ(cli::maml_table().covered(), cli::field_count<ml::algorithms::MamlOptions<float>>());
  EXPECT_EQ(cli::reptile_table().covered(),
            cli::field_count<ml::algorithms::ReptileOptions<float>>());
  EXPECT_EQ(cli::protonet_table().covered(),
            cli::field_count<ml::algorithms::ProtoNetOptions<float>>());
  EXPECT_EQ(cli::matching_table().covered(),
            cli::field_count<ml::algorithms::MatchingNetOptions<float>>());
  EXPECT_EQ(cli::task_table().covered(), cli::field_count<cli::TaskSettings>());
  EXPECT_EQ(cli::cnp_table().covered(), cli::field_count<ml::algorithms::CnpOptions>());
  EXPECT_EQ(cli::np_table().covered(), cli::field_count<ml::algorithms::NpOptions>());
  EXPECT_EQ(cli::gp_table().covered(), cli::field_count<ml::data::GaussianProcessOptions>());
  EXPECT_EQ(cli::run_table().covered(), cli::field_count<cli::RunSettings>());
  EXPECT_EQ(cli::environment_task_table().covered(), cli::field_count<cli::TaskSettings>());
  EXPECT_EQ(cli::rl2_table().covered(), cli::field_count<ml::algorithms::Rl2Options>());
  EXPECT_EQ(cli::bandit_table().covered(), cli::field_count<ml::env::BanditOptions>());
  EXPECT_EQ(cli::mdp_table().covered(), cli::field_count<ml::env::TabularMdpOptions>());
  EXPECT_EQ(cli::image_table().covered(), cli::field_count<ml::data::ImageCompletionOptions>());
  // The counter itself: a struct of three fields, one of them an aggregate.
  struct Inner {
    int a, b;
  };
  struct Three {
    int x;
    Inner inner;
    std::vector<int> v;
  };
  EXPECT_EQ(cli::field_count<Three>(), 3U);
}

TEST(FieldTables, EveryAlgorithmAndFamilyHasOneFlagPerName) {
  // CLI11 refuses a flag registered twice, so every pair builds its command line.
  for (const auto& [algorithm, families] : cli::algorithm_tasks()) {
    for (const auto& family : families) {
      SCOPED_TRACE(algorithm + " on " + family);
      CLI::App app("test");
      cli::GivenFlags given;
      EXPECT_NO_THROW(cli::add_config_flags(app, cli::default_config(algorithm, family), given));
      EXPECT_NE(app.get_option_no_throw("--seed"), nullptr);
      EXPECT_NE(app.get_option_no_throw("--steps"), nullptr);
    }
  }
}

TEST(FieldTables, FlagsSetTheFieldsTheyName) {
  cli::RunConfig c = cli::default_config("maml", "glyphs");
  cli::GivenFlags given;
  parse(c, given,
        {"--inner-lr", "0.25", "--eval-inner-steps", "none", "--first-order", "--loss", "mse",
         "--adapt-only", "[\"head.\", \"0.\"]", "--ways", "3", "--steps", "7", "--no-check-finite",
         "--queries", "4"});
  cli::apply_flags(given, c);
  ml::algorithms::MamlOptions<float> o;
  cli::maml_table().from_json(c.options, o, "test");
  EXPECT_FLOAT_EQ(o.inner_lr, 0.25f);
  EXPECT_FALSE(o.eval_inner_steps.has_value());
  EXPECT_TRUE(o.first_order);
  EXPECT_EQ(o.loss, ml::algorithms::LossKind::kMse);
  EXPECT_EQ(o.adapt_only, (std::vector<std::string>{"head.", "0."}));
  EXPECT_FALSE(o.check_finite);
  EXPECT_EQ(o.inner_steps, 1);  // untouched: the glyph default
  EXPECT_EQ(c.task.ways, 3);
  EXPECT_EQ(c.task.queries, 4);
  EXPECT_EQ(c.run.steps, 7);
}

TEST(FieldTables, BadValuesNameTheFlagAndTheChoices) {
  const cli::RunConfig c = cli::default_config("maml", "sinusoid");
  const auto message = [&](std::vector<std::string> args) {
    cli::RunConfig copy = c;
    cli::GivenFlags given;
    parse(copy, given, std::move(args));
    try {
      cli::apply_flags(given, copy);
    } catch (const ml::ValueError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({"--loss", "hinge"})
                .find("--loss: MamlOptions.loss: 'hinge' is not one of "
                      "mse, cross-entropy"),
            std::string::npos);
  EXPECT_NE(message({"--inner-steps", "1.5"})
                .find("--inner-steps: MamlOptions.inner_steps: "
                      "expected an integer"),
            std::string::npos);
  EXPECT_NE(message({"--ways", "x"}).find("--ways"), std::string::npos);
}

TEST(RunConfig, RoundTripsThroughJsonAndRejectsUnknownEntries) {
  cli::RunConfig c = cli::default_config("reptile", "omniglot");
  c.task.data = "/somewhere";
  c.run.keep = {10, 20};
  const cli::Json j = cli::to_json(c);
  const cli::RunConfig back = cli::config_from_json(j, "run.json");
  EXPECT_EQ(cli::to_json(back), j);
  // Floats are written as the shortest decimal that reads back as the same float.
  EXPECT_EQ(cli::to_json(cli::default_config("maml", "sinusoid"))["options"]["inner_lr"].dump(),
            "0.01");
  EXPECT_EQ(j["options"]["outer_step"].dump(), "1.0");

  cli::Json unknown = j;
  unknown["options"]["inner_rate"] = 0.1;
  try {
    (void)cli::config_from_json(unknown, "run.json");
    FAIL() << "an unknown option was accepted";
  } catch (const ml::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("run.json: 'inner_rate' is not a field of ReptileOptions"),
              std::string::npos)
        << e.what();
  }
  cli::Json other = j;
  other["algorithm"] = "protonet";
  other["tasks"] = "sinusoid";
  EXPECT_THROW((void)cli::config_from_json(other, "run.json"), ml::ValueError);
  other = j;
  other["format"] = "something else";
  EXPECT_THROW((void)cli::config_from_json(other, "run.json"), ml::ValueError);
}

TEST(Run, ResumedRunEqualsTheUninterruptedOneBitForBit) {
  std::ostringstream log;
  const fs::path whole = fresh_dir("whole");
  const fs::path parts = fresh_dir("parts");
  const cli::TrainOutcome a =
      cli::train(short_sinusoid("maml", 12), whole, false, quiet_reporting(log));
  EXPECT_TRUE(a.finished);
  EXPECT_EQ(a.steps, 12);
  EXPECT_EQ(a.final_episodes, 6U);
  // The same run, stopped after step 7 by the stop request and resumed.
  int polls = 0;
  const cli::TrainOutcome first = cli::train(
      short_sinusoid("maml", 12), parts, false,
      cli::Reporting{.out = &log, .progress = false, .stop = [&] { return ++polls == 7; }});
  EXPECT_TRUE(first.stopped);
  EXPECT_EQ(first.steps, 7);
  // train again into the same folder is refused; resume continues it.
  EXPECT_THROW((void)cli::train(short_sinusoid("maml", 12), parts, false, quiet_reporting(log)),
               ml::ValueError);
  const cli::TrainOutcome second =
      cli::train(cli::read_config(parts), parts, true, quiet_reporting(log));
  EXPECT_EQ(second.start_step, 7);
  EXPECT_TRUE(second.finished);
  EXPECT_EQ(stored_values(whole / "checkpoint.safetensors"),
            stored_values(parts / "checkpoint.safetensors"));
  EXPECT_EQ(second.final_mean, a.final_mean);
  for (const char* file : {"config.json", "metrics.jsonl", "results.json"}) {
    EXPECT_TRUE(fs::exists(parts / file)) << file;
  }
  // A resume with other settings than the run's is refused, naming the config.
  cli::RunConfig changed = cli::read_config(parts);
  changed.task.shots = 3;
  EXPECT_THROW((void)cli::train(changed, parts, true, quiet_reporting(log)), ml::ValueError);
  fs::remove_all(whole);
  fs::remove_all(parts);
}

TEST(Run, EvaluateAndInspectReadTheRunsCheckpoint) {
  std::ostringstream log;
  const fs::path dir = fresh_dir("evaluate");
  (void)cli::train(short_sinusoid("reptile", 6), dir, false, quiet_reporting(log));
  std::ostringstream out;
  const cli::Evaluation e = cli::evaluate(dir, {.episodes = 9}, out);
  EXPECT_EQ(e.episodes, 9U);
  EXPECT_EQ(e.step, 6);
  EXPECT_EQ(e.metric, "mse");
  EXPECT_GT(e.mean, 0.0);
  EXPECT_TRUE(fs::exists(dir / "evaluation.json"));
  std::ostringstream listing;
  cli::inspect(dir / "checkpoint.safetensors", listing);
  EXPECT_NE(listing.str().find("0.weight"), std::string::npos) << listing.str();
  EXPECT_NE(listing.str().find("learner.steps = 6"), std::string::npos) << listing.str();
  EXPECT_THROW(cli::inspect(dir / "missing.safetensors", listing), ml::IoError);
  EXPECT_THROW((void)cli::evaluate(dir / "nothing", {.episodes = 5}, out), ml::IoError);
  // Another number of support points and of inner steps: another result, recorded.
  const cli::Evaluation more =
      cli::evaluate(dir / "checkpoint.safetensors", {.episodes = 9, .shots = 5, .steps = 0}, out);
  EXPECT_NE(more.mean, e.mean);
  const cli::Json written = cli::Json::parse(cli::read_text(dir / "evaluation.json"));
  EXPECT_EQ(written["shots"], 5);
  EXPECT_EQ(written["inner_steps"], 0);
  EXPECT_EQ(written["checkpoint"], "checkpoint.safetensors");
  fs::remove_all(dir);
}

TEST(Run, EveryAlgorithmTrainsOnTheEmbeddedGlyphs) {
  for (const std::string algorithm : {"maml", "reptile", "protonet", "matching"}) {
    SCOPED_TRACE(algorithm);
    std::ostringstream log;
    const fs::path dir = fresh_dir("glyphs_" + algorithm);
    cli::RunConfig c = cli::default_config(algorithm, "glyphs");
    c.task.ways = 3;
    c.task.eval_ways = 3;
    c.task.meta_batch = 2;
    c.run = {.steps = 2, .eval_every = 2, .eval_episodes = 2, .final_eval_episodes = 3};
    if (algorithm == "protonet" || algorithm == "matching") c.options["embedding.hidden"] = 8;
    if (algorithm == "reptile") c.options["eval_inner_steps"] = 2;
    const cli::TrainOutcome o = cli::train(c, dir, false, quiet_reporting(log));
    EXPECT_TRUE(o.finished);
    EXPECT_EQ(o.final_episodes, 3U);
    EXPECT_GE(o.final_mean, 0.0);
    EXPECT_LE(o.final_mean, 1.0);
    fs::remove_all(dir);
  }
}

TEST(Run, NeuralProcessesTrainOnGaussianProcessTasks) {
  for (const std::string algorithm : {"cnp", "np", "anp"}) {
    SCOPED_TRACE(algorithm);
    std::ostringstream log;
    const fs::path dir = fresh_dir("gp_" + algorithm);
    cli::RunConfig c = cli::default_config(algorithm, "gp");
    EXPECT_EQ(c.gp.max_context, algorithm == "cnp" ? 9 : 49);
    c.task.meta_batch = 4;
    c.run = {.steps = 3, .eval_every = 3, .eval_episodes = 4, .final_eval_episodes = 5};
    shrink_neural_process(c);
    const cli::TrainOutcome o = cli::train(c, dir, false, quiet_reporting(log));
    EXPECT_TRUE(o.finished);
    EXPECT_EQ(o.final_episodes, 5U);
    EXPECT_TRUE(std::isfinite(o.final_mean));
    EXPECT_NE(log.str().find("test log-likelihood"), std::string::npos) << log.str();
    // The report's figure: one test task's context and the predictive mean and sigma
    // (at least the floor) on a grid of 101 inputs across [-2, 2].
    const cli::Json figure = cli::Json::parse(cli::read_text(dir / "results.json")).at("figure");
    ASSERT_EQ(figure.at("mean").size(), 101U);
    EXPECT_EQ(figure.at("x").front(), -2.0);
    EXPECT_EQ(figure.at("x").back(), 2.0);
    for (const auto& sigma : figure.at("sigma")) EXPECT_GE(sigma.get<double>(), 0.1 - 1e-6);
    EXPECT_GE(figure.at("support_x").size(), 3U);
    EXPECT_EQ(figure.at("query_y").size(), figure.at("query_x").size());
    // The family's settings are part of the run: a resume with others is refused.
    cli::RunConfig other = cli::read_config(dir);
    EXPECT_EQ(other.gp.noise_std, 0.02);
    other.gp.noise_std = 0.1;
    other.run.steps = 4;
    EXPECT_THROW((void)cli::train(other, dir, true, quiet_reporting(log)), ml::ValueError);
    fs::remove_all(dir);
  }
}

TEST(Run, NeuralProcessesTrainOnImageCompletion) {
  for (const std::string algorithm : {"cnp", "anp"}) {
    SCOPED_TRACE(algorithm);
    std::ostringstream log;
    const fs::path whole = fresh_dir("images_whole_" + algorithm);
    const fs::path parts = fresh_dir("images_parts_" + algorithm);
    cli::RunConfig c = cli::default_config(algorithm, "images");
    EXPECT_EQ(c.images.max_context, 200);
    EXPECT_TRUE(c.task.data.empty());  // the embedded glyphs
    c.images.max_context = 20;
    c.task.meta_batch = 2;
    c.run = {.steps = 3, .eval_every = 2, .eval_episodes = 3, .final_eval_episodes = 4};
    shrink_neural_process(c);
    const cli::TrainOutcome a = cli::train(c, whole, false, quiet_reporting(log));
    EXPECT_TRUE(a.finished);
    EXPECT_EQ(a.final_episodes, 4U);
    EXPECT_TRUE(std::isfinite(a.final_mean));
    EXPECT_NE(log.str().find("procedural glyphs"), std::string::npos) << log.str();
    // Stopped after step 2 and resumed: the same checkpoint, bit for bit.
    int polls = 0;
    const cli::TrainOutcome first = cli::train(
        c, parts, false,
        cli::Reporting{.out = &log, .progress = false, .stop = [&] { return ++polls == 2; }});
    EXPECT_EQ(first.steps, 2);
    const cli::TrainOutcome second =
        cli::train(cli::read_config(parts), parts, true, quiet_reporting(log));
    EXPECT_EQ(second.start_step, 2);
    EXPECT_EQ(stored_values(whole / "checkpoint.safetensors"),
              stored_values(parts / "checkpoint.safetensors"));
    EXPECT_EQ(second.final_mean, a.final_mean);
    std::ostringstream out;
    const cli::Evaluation e = cli::evaluate(whole, {.episodes = 4}, out);
    EXPECT_EQ(e.metric, "log-likelihood");
    EXPECT_EQ(e.mean, a.final_mean);
    // The context range is part of the run; one beyond an image's pixels is refused.
    cli::RunConfig other = cli::read_config(whole);
    EXPECT_EQ(other.images.max_context, 20);
    other.images.max_context = 30;
    other.run.steps = 4;
    EXPECT_THROW((void)cli::train(other, whole, true, quiet_reporting(log)), ml::ValueError);
    // A refused configuration leaves no run behind: the corrected one then starts there.
    cli::RunConfig huge = c;
    huge.images.max_context = 10000;
    const fs::path refused = fresh_dir("images_refused");
    EXPECT_THROW((void)cli::train(huge, refused, false, quiet_reporting(log)), ml::ValueError);
    EXPECT_FALSE(fs::exists(refused / "config.json"));
    c.run.steps = 1;
    EXPECT_TRUE(cli::train(c, refused, false, quiet_reporting(log)).finished);
    fs::remove_all(refused);
    fs::remove_all(whole);
    fs::remove_all(parts);
  }
}

TEST(Report, HoldsTheRunsSeriesAndOverlaysRuns) {
  std::ostringstream log;
  const fs::path a = fresh_dir("report_a");
  const fs::path b = fresh_dir("report_b");
  cli::RunConfig c = short_sinusoid("maml", 10);
  (void)cli::train(c, a, false, quiet_reporting(log));
  c.run.steps = 5;
  (void)cli::train(c, b, false, quiet_reporting(log));
  const cli::RunSeries s = cli::read_series(a);
  EXPECT_EQ(s.label, "metalearn_cli_test_report_a");
  EXPECT_EQ(s.train_loss.size(), 10U);  // logged every step
  ASSERT_EQ(s.eval.size(), 2U);         // steps 5 and 10
  EXPECT_EQ(s.eval[1][0], 10.0);
  EXPECT_EQ(s.speed.size(), 9U);
  for (const auto& [step, rate] : s.speed) EXPECT_GT(rate, 0.0) << step;
  // train wrote the run's report; report overlays both runs in one page.
  const std::string page = cli::read_text(a / "report.html");
  EXPECT_NE(page.find("<canvas id=\"eval\">"), std::string::npos);
  EXPECT_EQ(page.find("cdn"), std::string::npos) << "the page must not load anything";
  if (cli::report_has_charts()) {
    EXPECT_NE(page.find("Chart.js v"), std::string::npos);
  }
  const fs::path both = a / "both.html";
  cli::write_report({a, b}, both);
  const std::string overlay = cli::read_text(both);
  EXPECT_NE(overlay.find("metalearn_cli_test_report_b"), std::string::npos);
  EXPECT_THROW(cli::write_report({a / "missing"}, both), ml::IoError);
  // A damaged metrics line is named.
  {
    std::ofstream f(b / "metrics.jsonl", std::ios::app);
    f << "{not json\n";
  }
  try {
    (void)cli::read_series(b);
    FAIL() << "a damaged line was read";
  } catch (const ml::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("line 7 of"), std::string::npos) << e.what();
  }
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST(RunConfig, UnsupportedPairsAreRefusedWithTheChoices) {
  try {
    (void)cli::default_config("protonet", "sinusoid");
    FAIL();
  } catch (const ml::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("protonet does not train on --tasks 'sinusoid' (omniglot, "
                                         "glyphs)"),
              std::string::npos);
  }
  EXPECT_THROW((void)cli::default_config("snail", "glyphs"), ml::ValueError);
}

TEST(Run, ContinuesACheckpointWrittenBeforeAnOptionExisted) {
  // The "config" setting of a checkpoint written before reward_scale and separate_value
  // existed lacks them. Their defaults keep the behaviour runs had before, so the run
  // continues, to the bits of one never stopped; a stored config that differs in a value
  // is still refused.
  std::ostringstream log;
  const fs::path whole = fresh_dir("rl2_older_whole");
  const fs::path parts = fresh_dir("rl2_older_parts");
  cli::RunConfig c = cli::default_config("rl2", "bandits");
  c.options["hidden"] = 8;
  c.options["trials"] = 8;
  c.options["minibatches"] = 2;
  c.options["epochs"] = 1;
  c.bandits.pulls = 4;
  c.run = {
      .steps = 4, .eval_every = 2, .eval_episodes = 6, .final_eval_episodes = 10, .log_every = 1};
  (void)cli::train(c, whole, false, quiet_reporting(log));
  int polls = 0;
  const cli::TrainOutcome first = cli::train(
      c, parts, false,
      cli::Reporting{.out = &log, .progress = false, .stop = [&] { return ++polls == 3; }});
  ASSERT_EQ(first.steps, 3);

  const fs::path checkpoint = parts / "checkpoint.safetensors";
  const auto rewrite = [&](const auto& edit) {
    auto [tensors, metadata] = ml::io::load_safetensors_file<float>(checkpoint);
    cli::Json stored = cli::Json::parse(metadata.at("config"));
    edit(stored.at("options"));
    metadata["config"] = stored.dump();
    ml::io::save_safetensors(checkpoint, tensors, metadata);
  };
  rewrite([](cli::Json& options) {
    ASSERT_TRUE(options.contains("separate_value"));
    options.erase("separate_value");
    options.erase("reward_scale");
  });
  const cli::TrainOutcome second =
      cli::train(cli::read_config(parts), parts, true, quiet_reporting(log));
  EXPECT_EQ(second.start_step, 3);
  EXPECT_EQ(stored_values(whole / "checkpoint.safetensors"), stored_values(checkpoint));

  rewrite([](cli::Json& options) { options["trials"] = 16; });
  const auto before = stored_values(checkpoint);
  EXPECT_THROW((void)cli::train(cli::read_config(parts), parts, true, quiet_reporting(log)),
               ml::Error);
  EXPECT_EQ(before, stored_values(checkpoint));
}

TEST(Run, Rl2TrainsOnEnvironmentFamiliesResumesAndEvaluates) {
  for (const std::string tasks : {"bandits", "mdps"}) {
    SCOPED_TRACE(tasks);
    std::ostringstream log;
    const fs::path whole = fresh_dir("rl2_whole_" + tasks);
    const fs::path parts = fresh_dir("rl2_parts_" + tasks);
    cli::RunConfig c = cli::default_config("rl2", tasks);
    EXPECT_EQ(c.options["hidden"], 256);
    c.options["hidden"] = 8;
    c.options["trials"] = 8;
    c.options["minibatches"] = 2;
    c.options["epochs"] = 1;
    c.mdp.episodes = 2;
    c.bandits.pulls = 4;
    c.run = {
        .steps = 4, .eval_every = 2, .eval_episodes = 6, .final_eval_episodes = 10, .log_every = 1};
    const cli::TrainOutcome a = cli::train(c, whole, false, quiet_reporting(log));
    EXPECT_TRUE(a.finished);
    EXPECT_EQ(a.final_episodes, 10U);
    EXPECT_NE(log.str().find("test return"), std::string::npos) << log.str();
    // Stopped after step 3 and resumed: the same checkpoint, bit for bit.
    int polls = 0;
    const cli::TrainOutcome first = cli::train(
        c, parts, false,
        cli::Reporting{.out = &log, .progress = false, .stop = [&] { return ++polls == 3; }});
    EXPECT_EQ(first.steps, 3);
    const cli::TrainOutcome second =
        cli::train(cli::read_config(parts), parts, true, quiet_reporting(log));
    EXPECT_EQ(second.start_step, 3);
    EXPECT_EQ(stored_values(whole / "checkpoint.safetensors"),
              stored_values(parts / "checkpoint.safetensors"));
    EXPECT_EQ(second.final_mean, a.final_mean);
    // The run's figure: what the agent learns within a trial on 200 test environments.
    const cli::Json figure = cli::Json::parse(cli::read_text(whole / "results.json")).at("figure");
    if (tasks == "bandits") {
      const auto regret = figure.at("regret").get<std::vector<double>>();
      ASSERT_EQ(regret.size(), 4U);  // one value per pull
      EXPECT_GE(regret.front(), 0.0);
      for (std::size_t i = 1; i < regret.size(); ++i) EXPECT_GE(regret[i], regret[i - 1]);
    } else {
      EXPECT_EQ(figure.at("episode_return").size(), 2U);  // one value per episode
    }
    EXPECT_EQ(figure.at("trials"), 200);
    // The report draws the training return and the learning rate of every logged step.
    const cli::RunSeries series = cli::read_series(whole);
    EXPECT_EQ(series.train_return.size(), 4U);
    EXPECT_EQ(series.lr.size(), 4U);
    EXPECT_EQ(series.eval.size(), 2U);
    // Evaluation on fresh environments; the supervised episodes' flags are refused.
    std::ostringstream out;
    const cli::Evaluation e = cli::evaluate(whole, {.episodes = 10}, out);
    EXPECT_EQ(e.metric, "return");
    EXPECT_EQ(e.episodes, 10U);
    EXPECT_EQ(e.mean, a.final_mean);
    // Beside the score, the mean reward of every step over the same trials: they sum to it.
    const cli::Json evaluation = cli::Json::parse(cli::read_text(whole / "evaluation.json"));
    const auto steps = evaluation.at("mean_rewards").get<std::vector<double>>();
    ASSERT_EQ(steps.size(), static_cast<std::size_t>(tasks == "bandits" ? 4 : 2 * c.mdp.horizon));
    double sum = 0.0;
    for (const double v : steps) sum += v;
    EXPECT_NEAR(sum, e.mean, 1e-9 * (1.0 + std::abs(e.mean)));
    if (tasks == "bandits") {
      const double best = evaluation.at("best_mean").get<double>();
      EXPECT_GT(best, 0.0);
      EXPECT_LE(best, 1.0);
      for (const double v : steps) EXPECT_LE(v, 1.0);
    } else {
      // No agent beats the optimal policy of each MDP, in expectation; over 10 trials
      // its mean return per episode lies well above the agent's.
      EXPECT_GT(evaluation.at("optimal_episode").get<double>() * 2.0, e.mean);
    }
    EXPECT_THROW((void)cli::evaluate(whole, {.episodes = 10, .ways = 3}, out), ml::ValueError);
    // The family is part of the run: a resume with other environments is refused.
    cli::RunConfig other = cli::read_config(whole);
    other.bandits.arms = 7;
    other.mdp.states = 4;
    other.run.steps = 6;
    EXPECT_THROW((void)cli::train(other, whole, true, quiet_reporting(log)), ml::ValueError);
    fs::remove_all(whole);
    fs::remove_all(parts);
  }
}
