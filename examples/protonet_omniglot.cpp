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
//
// Trains with train::fit. With --checkpoint DIR it keeps DIR/checkpoint.safetensors (the
// learner's whole state: network, batch-norm statistics, Adam state and episode count,
// with the run's settings) every --checkpoint-every episodes and when training stops,
// and DIR/metrics.jsonl; --resume continues from it exactly (a checkpoint written with
// other settings is refused), so a long schedule can be trained in several
// --time-limit runs, each evaluating the network it reached.
//
// Usage: protonet_omniglot [--data DIR] [--steps N] [--time-limit MIN] [--train-ways N]
//          [--train-shots K] [--train-queries Q] [--test-queries Q] [--episodes N]
//          [--lr X] [--decay-every N] [--threads N] [--seed S] [--log-every N] [--out FILE]
//          [--checkpoint DIR] [--checkpoint-every N] [--resume]

#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <iterator>
#include <memory>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

#include "example_support.hpp"

namespace ml = metalearn;
namespace alg = metalearn::algorithms;
using examples::Clock;
using examples::seconds_since;

namespace {

struct Args {
  std::string data;
  int steps = 20000;
  double time_limit = 0.0;  // minutes of training in this run; 0: no limit
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
  examples::add_at_least(app, "--time-limit", a.time_limit,
                         "minutes of training in this run (0: none); continue with --resume", 0);
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
  examples::add_checkpoint_options(app, a.checkpoint, "episodes");
  examples::parse_or_exit(app, argc, argv);
  return a;
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
  const auto options = alg::ProtoNetOptions<float>{.lr = args.lr,
                                                   .lr_decay = 0.5,
                                                   .lr_decay_every = args.decay_every,
                                                   .threads = args.threads,
                                                   .seed = args.seed + 1000};
  alg::ProtoNet<float> protonet(gen, options);

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

  const std::string limit =
      args.time_limit > 0 ? fmt::format(", time limit {:g} min", args.time_limit) : "";
  fmt::print(
      "ProtoNet: ConvNet4 (64 channels, running batch norm), {}-way {}-shot {}-query "
      "training episodes, Adam {:.0e} halved every {}, up to {} episodes{}\n",
      args.train_ways, args.train_shots, args.train_queries, args.lr, args.decay_every, args.steps,
      limit);
  std::fflush(stdout);

  // ---- training ---------------------------------------------------------------
  double loss = 0.0, acc = 0.0;  // moving averages over the training episodes of this run
  bool started = false;
  const ml::train::FitOptions fit{
      .steps = args.steps,
      .time_limit = 60.0 * args.time_limit,
      .checkpoint_every = args.checkpoint.every,
      .log_every = args.log_every,
      .run_dir = args.checkpoint.dir,
      .resume = args.checkpoint.resume,
      .progress = false,
      // What a resumed run must share with the run that wrote its checkpoint (the number
      // of episodes may grow: the learning-rate schedule does not depend on it).
      .settings = {{"dataset", train_set->name()},
                   {"seed", std::to_string(args.seed)},
                   {"train_ways", std::to_string(args.train_ways)},
                   {"train_shots", std::to_string(args.train_shots)},
                   {"train_queries", std::to_string(args.train_queries)},
                   {"lr", fmt::format("{:.17g}", args.lr)},
                   {"decay_every", std::to_string(args.decay_every)}},
      .on_step = [&](std::int64_t step, const alg::StepStats& s) {
        loss = started ? 0.98 * loss + 0.02 * s.meta_loss : s.meta_loss;
        const double step_acc = s.post_accuracy.value_or(0.0);
        acc = started ? 0.98 * acc + 0.02 * step_acc : step_acc;
        started = true;
        if (step % args.log_every == 0 || step == args.steps) {
          fmt::print("step {}/{}  loss {:.4f}  train acc {:.4f}  lr {:.2e}\n", step, args.steps,
                     loss, acc, protonet.current_lr());
          std::fflush(stdout);
        }
      }};
  const auto result = examples::fit_or_exit(protonet, batches, fit, "episode");
  const double rate = result.steps > result.start_step
                          ? static_cast<double>(result.steps - result.start_step) / result.seconds
                          : 0.0;

  // ---- evaluation -------------------------------------------------------------
  struct Config {
    ml::Index ways, shots;
    double paper;
  };
  const std::vector<Config> configs{{5, 1, 98.8}, {5, 5, 99.7}, {20, 1, 96.0}, {20, 5, 98.9}};
  // The baseline: prototypes and squared distances of the raw pixels, on the same
  // episodes (the same evaluation seed).
  ml::nn::Flatten<float> pixels;
  const alg::ProtoNet<float> pixel_protonet(pixels, options);
  fmt::print("\nTest accuracy over {} episodes ({} queries per class), mean +- 95% CI\n",
             args.episodes, args.test_queries);
  fmt::print("{:<16} {:>18} {:>18} {:>10} {:>14}\n", "episodes", "accuracy (%)", "raw pixels (%)",
             "paper", "episodes/s");
  std::string table =
      "| test episodes | accuracy (%) | raw pixels (%) | paper (%) | eval episodes/s |\n"
      "|---|---|---|---|---|\n";
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
  }
  const double total = seconds_since(t_start);
  fmt::print(
      "\ntraining: {} episodes in {:.1f} s ({} in this run, {:.2f} episodes/s); total wall time of "
      "this run {:.1f} s\n",
      result.steps, result.train_seconds, result.steps - result.start_step, rate, total);
  if (!args.out.empty()) {
    if (!examples::write_results(
            args.out,
            fmt::format(
                "dataset: {}\ntraining: {}-way {}-shot {}-query, {} episodes, {:.1f} s ({} in this "
                "run, {:.2f} episodes/s), threads {}, seed {}\ntotal wall time of this run: {:.1f} "
                "s\n\n{}",
                train_set->name(), args.train_ways, args.train_shots, args.train_queries,
                result.steps, result.train_seconds, result.steps - result.start_step, rate,
                args.threads, args.seed, total, table))) {
      return 1;
    }
  }
  return 0;
}
