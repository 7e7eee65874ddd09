// Prototypical Networks on Omniglot (Snell, Swersky & Zemel 2017, section 3.1).
//
// Trains the 4-block 64-channel ConvNet on 60-way 5-shot episodes with 5 queries per
// class (Adam 1e-3, halved every 2000 episodes), then evaluates 5-way and 20-way,
// 1-shot and 5-shot on unseen characters with 95% intervals, beside the paper's
// numbers and a nearest prototype on raw pixels (no network) on the same episodes.
// Omniglot follows Vinyals et al.: 1200 training characters, the other 423 for testing,
// each rotated by 0/90/180/270 degrees to make four classes.
//
// Without --data (or METALEARN_OMNIGLOT_DIR) it runs on the embedded procedural glyphs,
// so it works on a fresh machine; the paper's numbers then do not apply. --steps 0
// evaluates the untrained network.
// With --checkpoint FILE it saves the network (parameters and batch-norm statistics),
// the Adam state and the episode count there (atomically) every --checkpoint-every
// episodes and when training stops; --resume continues from that file exactly, so a
// long schedule can be trained in several runs.
//
// Usage: protonet_omniglot [--data DIR] [--steps N] [--time-limit MIN] [--train-ways N]
//          [--train-shots K] [--train-queries Q] [--test-queries Q] [--episodes N]
//          [--lr X] [--decay-every N] [--threads N] [--seed S] [--log-every N] [--out FILE]
//          [--checkpoint FILE] [--checkpoint-every N] [--resume]

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

#include "example_support.hpp"

namespace ml = metalearn;
using examples::Clock;
using examples::seconds_since;

namespace {

struct Args {
  std::string data;
  int steps = 20000;
  double time_limit = 0.0;  // minutes of training; 0: no limit
  ml::Index train_ways = 60, train_shots = 5, train_queries = 5, test_queries = 15;
  int episodes = 1000;
  double lr = 1e-3;
  int decay_every = 2000;
  int threads = 1;
  std::uint64_t seed = 1;
  int log_every = 100;
  std::string out;
  examples::CheckpointArgs checkpoint;
};

Args parse(int argc, char** argv) {
  Args a;
  CLI::App app("Prototypical Networks on Omniglot (Snell, Swersky & Zemel 2017)",
               "protonet_omniglot");
  examples::add_data_option(app, a.data);
  examples::add_at_least(app, "--steps", a.steps, "training episodes", 0);
  examples::add_at_least(app, "--time-limit", a.time_limit, "minutes of training (0: none)", 0);
  app.add_option("--train-ways", a.train_ways, "classes per training episode")
      ->capture_default_str()
      ->check(CLI::Range(2, 100000));
  examples::add_at_least(app, "--train-shots", a.train_shots,
                         "support examples per class in training", 1);
  examples::add_at_least(app, "--train-queries", a.train_queries,
                         "query examples per class in training", 1);
  examples::add_at_least(app, "--test-queries", a.test_queries, "query examples per class at test",
                         1);
  examples::add_at_least(app, "--episodes", a.episodes, "test episodes per configuration", 1);
  examples::add_positive(app, "--lr", a.lr, "Adam learning rate");
  examples::add_at_least(app, "--decay-every", a.decay_every,
                         "episodes between halvings of the rate (0: none)", 0);
  examples::add_at_least(app, "--threads", a.threads,
                         "threads (of a training episode's convolutions and of evaluation)", 1);
  app.add_option("--seed", a.seed, "seed")->capture_default_str();
  examples::add_at_least(app, "--log-every", a.log_every, "episodes between log lines", 1);
  app.add_option("--out", a.out, "markdown file for the results");
  examples::add_checkpoint_options(app, a.checkpoint,
                                   "the network, the Adam state and the episode count");
  examples::parse_or_exit(app, argc, argv);
  return a;
}

// The settings a resumed run must share with the run that wrote its checkpoint (the
// number of episodes may grow: the learning-rate schedule does not depend on it).
ml::io::Metadata run_settings(const Args& a) {
  return {{"seed", std::to_string(a.seed)},
          {"train_ways", std::to_string(a.train_ways)},
          {"train_shots", std::to_string(a.train_shots)},
          {"train_queries", std::to_string(a.train_queries)},
          {"lr", fmt::format("{:.17g}", a.lr)},
          {"decay_every", std::to_string(a.decay_every)}};
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  const auto t_start = Clock::now();

  // ---- data -------------------------------------------------------------------
  const examples::ClassData classes =
      examples::load_class_data_or_exit(args.data, /*test_rotations=*/true);
  const auto& train_set = classes.train;
  const auto& test_set = classes.test;
  const bool omniglot = classes.omniglot;

  // ---- model ------------------------------------------------------------------
  ml::Generator gen(args.seed);
  const auto options = ml::algorithms::ProtoNetOptions<float>{}
                           .lr(args.lr)
                           .lr_decay(0.5, args.decay_every)
                           .threads(args.threads)
                           .seed(args.seed + 1000);
  ml::algorithms::ProtoNet<float> protonet(gen, options);

  std::unique_ptr<ml::data::EpisodicSampler<float>> train;
  try {
    train = std::make_unique<ml::data::EpisodicSampler<float>>(
        train_set,
        ml::data::EpisodicOptions{
            .ways = args.train_ways, .shots = args.train_shots, .queries = args.train_queries});
  } catch (const ml::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  ml::data::MetaBatchSampler<float> batches(*train, {.batch = 1, .seed = args.seed, .prefetch = 2});

  // ---- checkpoint -------------------------------------------------------------
  const auto resumed =
      examples::resume_or_exit(args.checkpoint, run_settings(args), "episode",
                               [&](const ml::io::TrainingCheckpoint<float>& saved) {
                                 protonet.load_state(ml::train::to_state(
                                     saved, protonet.state().buffers, args.checkpoint.file));
                               });
  const int start = resumed.step;
  const double trained_before = resumed.train_seconds;  // seconds of training in earlier runs
  batches.set_position(static_cast<std::uint64_t>(start));
  auto save = [&](int step, double seconds) {
    examples::save_run_checkpoint(args.checkpoint.file, run_settings(args), step, seconds,
                                  train_set->name(), protonet.state());
  };

  // ---- training ---------------------------------------------------------------
  const std::string limit =
      args.time_limit > 0 ? fmt::format(", time limit {:g} min", args.time_limit) : "";
  fmt::print(
      "ProtoNet: ConvNet4 (64 channels, running batch norm), {}-way {}-shot {}-query "
      "training episodes, Adam {:.0e} halved every {}, up to {} episodes{}\n",
      args.train_ways, args.train_shots, args.train_queries, args.lr, args.decay_every, args.steps,
      limit);
  std::fflush(stdout);
  const auto t0 = Clock::now();
  double loss = 0.0, acc = 0.0;
  int done = start;
  for (int step = start + 1; step <= args.steps; ++step) {
    const auto stats = protonet.meta_step(batches.next());
    const bool first = step == start + 1;
    loss = first ? stats.meta_loss : 0.98 * loss + 0.02 * stats.meta_loss;
    acc = first ? stats.post_accuracy : 0.98 * acc + 0.02 * stats.post_accuracy;
    done = step;
    const double elapsed = seconds_since(t0);
    const bool out_of_time = args.time_limit > 0 && elapsed > 60.0 * args.time_limit;
    if (step % args.log_every == 0 || step == args.steps || out_of_time) {
      fmt::print(
          "step {}/{}  loss {:.4f}  train acc {:.4f}  lr {:.2e}  {:.2f} episodes/s  {:.0f} s\n",
          step, args.steps, loss, acc, protonet.current_lr(), (step - start) / elapsed,
          trained_before + elapsed);
      std::fflush(stdout);
    }
    if (step % args.checkpoint.every == 0 || step == args.steps || out_of_time)
      save(step, trained_before + elapsed);
    if (out_of_time) {
      fmt::print("time limit reached after {} episodes\n", step);
      break;
    }
  }
  const double run_seconds = seconds_since(t0);
  const double train_seconds = trained_before + run_seconds;
  const double rate = done > start ? (done - start) / run_seconds : 0.0;

  // ---- evaluation -------------------------------------------------------------
  struct Config {
    ml::Index ways, shots;
    double paper;
  };
  const std::vector<Config> configs{{5, 1, 98.8}, {5, 5, 99.7}, {20, 1, 96.0}, {20, 5, 98.9}};
  // The baseline: prototypes and squared distances of the raw pixels, on the same
  // episodes (the same evaluation seed).
  ml::nn::Flatten<float> pixels;
  const ml::algorithms::ProtoNet<float> pixel_protonet(pixels, options);
  fmt::print("\nTest accuracy over {} episodes ({} queries per class), mean +- 95% CI\n",
             args.episodes, args.test_queries);
  fmt::print("{:<16} {:>18} {:>18} {:>10} {:>14}\n", "episodes", "accuracy (%)", "raw pixels (%)",
             "paper", "episodes/s");
  std::string table =
      "| test episodes | accuracy (%) | raw pixels (%) | paper (%) | eval episodes/s |\n"
      "|---|---|---|---|---|\n";
  std::vector<double> means;
  for (const auto& c : configs) {
    const auto t_eval = Clock::now();
    ml::data::EpisodicSampler<float> test(
        test_set, {.ways = c.ways, .shots = c.shots, .queries = args.test_queries});
    const auto r = protonet.evaluate(test, static_cast<std::size_t>(args.episodes));
    const double eps = args.episodes / seconds_since(t_eval);
    const auto raw = pixel_protonet.evaluate(test, static_cast<std::size_t>(args.episodes));
    const std::string name = fmt::format("{}-way {}-shot", c.ways, c.shots);
    // The paper measured Omniglot: no number to compare on other data.
    const std::string paper = omniglot ? fmt::format("{:.1f}", c.paper) : "-";
    fmt::print("{:<16} {:>10.2f} +- {:>5.2f} {:>10.2f} +- {:>5.2f} {:>10} {:>14.1f}\n", name,
               100 * r.mean, 100 * r.ci95, 100 * raw.mean, 100 * raw.ci95, paper, eps);
    std::fflush(stdout);
    fmt::format_to(std::back_inserter(table),
                   "| {} | {:.2f} +- {:.2f} | {:.2f} +- {:.2f} | {} | {:.1f} |\n", name,
                   100 * r.mean, 100 * r.ci95, 100 * raw.mean, 100 * raw.ci95, paper, eps);
    means.push_back(r.mean);
  }
  const double total = seconds_since(t_start);
  fmt::print(
      "\ntraining: {} episodes in {:.1f} s ({} in this run, {:.2f} episodes/s); total wall time of "
      "this run {:.1f} s\n",
      done, train_seconds, done - start, rate, total);
  if (!args.out.empty()) {
    if (!examples::write_results(
            args.out,
            fmt::format(
                "dataset: {}\ntraining: {}-way {}-shot {}-query, {} episodes, {:.1f} s ({} in this "
                "run, {:.2f} episodes/s), threads {}, seed {}\ntotal wall time of this run: {:.1f} "
                "s\n\n{}",
                train_set->name(), args.train_ways, args.train_shots, args.train_queries, done,
                train_seconds, done - start, rate, args.threads, args.seed, total, table))) {
      return 1;
    }
  }
  return 0;
}
