// MAML on N-way K-shot image classification (Finn et al. 2017, section 5.2).
//
// ConvNet4 (4 x [conv3x3 64, batch norm, ReLU, 2x2 max-pool], linear head),
// transductive batch norm as in the reference code, 5-way 1-shot by default,
// meta-batch 32, one inner step of 0.4 during training and three at test, Adam
// 1e-3. Training classes are the 1200 Vinyals training characters with their
// four rotations (4800 classes); evaluation uses the 423 unseen characters.
// Without a data directory it runs on the embedded procedural glyphs.
//
// Usage: maml_omniglot [--data DIR] [--ways 5] [--shots 1] [--queries K] [--steps 60000]
//          [--meta-batch 32] [--inner-lr 0.4] [--inner-steps 1] [--eval-steps 3]
//          [--eval-every 500] [--eval-episodes 600] [--threads 2] [--first-order]
//          [--out DIR] [--resume]
// Trains with train::fit: DIR/metrics.jsonl (one record per evaluation) and
// DIR/checkpoint.safetensors (the learner's whole state: --resume continues exactly;
// checkpoints written by earlier versions as meta_parameters.safetensors load too).

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

#include "example_support.hpp"

namespace ml = metalearn;
namespace alg = metalearn::algorithms;

namespace {

struct Args {
  std::string data;
  ml::Index ways = 5, shots = 1, queries = 0, eval_queries = 15;
  int steps = 60000, meta_batch = 32, inner_steps = 1, eval_steps = 3;
  float inner_lr = 0.4f, outer_lr = 1e-3f;
  int eval_every = 500;
  std::size_t eval_episodes = 600;
  int threads = 2;
  bool first_order = false, resume = false;
  std::string out = "maml_omniglot_out";
  std::uint64_t seed = 1;
  std::vector<int> keep;
};

Args parse(int argc, char** argv) {
  Args a;
  CLI::App app("MAML on N-way K-shot image classification (Finn et al. 2017, section 5.2)",
               "maml_omniglot");
  examples::add_data_option(app, a.data);
  app.add_option("--ways", a.ways, "classes per task")
      ->capture_default_str()
      ->check(CLI::Range(2, 1000));
  examples::add_at_least(app, "--shots", a.shots, "support examples per class", 1);
  examples::add_at_least(app, "--queries", a.queries,
                         "query examples per class in training (0: as many as shots, as in the "
                         "reference code)",
                         0);
  examples::add_at_least(app, "--eval-queries", a.eval_queries, "query examples per class at test",
                         1);
  examples::add_at_least(app, "--steps", a.steps, "meta-steps", 0);
  examples::add_at_least(app, "--meta-batch", a.meta_batch, "tasks per meta-step", 1);
  app.add_option("--inner-lr", a.inner_lr, "inner SGD step size")->capture_default_str();
  examples::add_at_least(app, "--inner-steps", a.inner_steps, "inner steps in training", 0);
  examples::add_at_least(app, "--eval-steps", a.eval_steps, "inner steps at test", 0);
  examples::add_positive(app, "--outer-lr", a.outer_lr, "Adam learning rate of the meta-update");
  examples::add_at_least(app, "--eval-every", a.eval_every,
                         "meta-steps between evaluations and checkpoints", 1);
  examples::add_at_least(app, "--eval-episodes", a.eval_episodes,
                         "test episodes of the final evaluation", 1);
  examples::add_at_least(app, "--threads", a.threads, "threads for the tasks of a meta-batch", 1);
  app.add_flag("--first-order", a.first_order, "first-order MAML");
  app.add_option("--seed", a.seed, "seed")->capture_default_str();
  app.add_option("--out", a.out, "run folder (metrics.jsonl, checkpoint.safetensors)")
      ->capture_default_str();
  app.add_flag("--resume", a.resume, "continue from the checkpoint in --out when it exists");
  app.add_option("--keep", a.keep,
                 "meta-steps whose checkpoint is also kept as checkpoint_step<N>.safetensors")
      ->expected(0, -1);
  examples::parse_or_exit(app, argc, argv);
  if (a.queries == 0) a.queries = a.shots;
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  const examples::ClassData classes =
      examples::load_class_data_or_exit(args.data, /*test_rotations=*/false);
  const auto& train = classes.train;
  const auto& test = classes.test;
  const std::string source =
      classes.omniglot ? "Omniglot at " + args.data
                       : "embedded procedural glyphs (no --data or METALEARN_OMNIGLOT_DIR given)";

  ml::Generator gen(args.seed);
  ml::nn::ConvNet4<float> model(ml::nn::ConvNet4Options{.ways = args.ways}, gen);
  ml::algorithms::Maml<float> maml(model,
                                   alg::MamlOptions<float>{.inner_lr = args.inner_lr,
                                                           .inner_steps = args.inner_steps,
                                                           .eval_inner_steps = args.eval_steps,
                                                           .first_order = args.first_order,
                                                           .outer_lr = args.outer_lr,
                                                           .loss = alg::LossKind::kCrossEntropy,
                                                           .threads = args.threads,
                                                           .seed = args.seed + 7});
  ml::data::EpisodicSampler<float> train_episodes(
      train, {.ways = args.ways, .shots = args.shots, .queries = args.queries});
  ml::data::EpisodicSampler<float> test_episodes(
      test, {.ways = args.ways, .shots = args.shots, .queries = args.eval_queries});
  const ml::data::AnyTaskSampler<float> test_tasks(test_episodes);
  ml::data::MetaBatchSampler<float> batches(
      train_episodes, {.batch = args.meta_batch, .seed = args.seed, .prefetch = 2});

  fmt::print(
      "MAML {}-way {}-shot on {}\nConvNet4, meta-batch {}, inner lr {:.2f} x {} step(s) "
      "({} at test), {}, Adam {:.0e}, {} thread(s), {} meta-steps\n",
      args.ways, args.shots, source, args.meta_batch, static_cast<double>(args.inner_lr),
      args.inner_steps, args.eval_steps, args.first_order ? "first order" : "second order",
      static_cast<double>(args.outer_lr), args.threads, args.steps);
  // The training loss and accuracy averaged since the last evaluation.
  double loss_sum = 0.0, acc_sum = 0.0;
  int window = 0;
  ml::train::FitOptions fit{
      .steps = args.steps,
      .eval_every = args.eval_every,
      .eval_episodes = 100,
      .final_eval_episodes = args.eval_episodes,
      .checkpoint_every = args.eval_every,
      .keep = {args.keep.begin(), args.keep.end()},
      .run_dir = args.out,
      .resume = args.resume,
      .settings = {{"ways", std::to_string(args.ways)},
                   {"shots", std::to_string(args.shots)},
                   {"meta_batch", std::to_string(args.meta_batch)},
                   {"inner_steps", std::to_string(args.inner_steps)},
                   {"first_order", args.first_order ? "1" : "0"},
                   {"seed", std::to_string(args.seed)},
                   {"source", source}},
      .on_step =
          [&](std::int64_t, const alg::StepStats& stats) {
            loss_sum += stats.meta_loss;
            acc_sum += stats.post_accuracy.value_or(0.0);
            ++window;
          },
      .on_eval =
          [&](std::int64_t step, const alg::EvalResult& r) {
            fmt::print(
                "step {:6}  train loss {:.3f} acc {:.3f} | test acc {:.2f}% +- {:.2f}% ({} "
                "episodes)\n",
                step, loss_sum / std::max(window, 1), acc_sum / std::max(window, 1), 100 * r.mean,
                100 * r.ci95, r.episodes);
            std::fflush(stdout);
            loss_sum = acc_sum = 0.0;
            window = 0;
          }};
  const std::filesystem::path earlier =
      std::filesystem::path(args.out) / "meta_parameters.safetensors";
  if (args.resume &&
      !std::filesystem::exists(std::filesystem::path(args.out) / "checkpoint.safetensors") &&
      std::filesystem::exists(earlier)) {
    // A run directory of an earlier version: its checkpoint holds the meta-parameters and
    // the outer optimizer, which is the whole state of this learner.
    (void)ml::train::load_checkpoint(earlier, maml);
    fmt::print("continuing from {}\n", earlier.string());
  }
  const ml::train::FitResult result = ml::train::fit(maml, batches, fit, &test_tasks);
  if (result.start_step > 0) {
    fmt::print("(this run continued from step {})\n", result.start_step);
  }
  if (result.steps == result.start_step) {
    const auto r = maml.evaluate(test_tasks, args.eval_episodes);
    fmt::print("test accuracy {:.2f}% +- {:.2f}% over {} episodes\n", 100 * r.mean, 100 * r.ci95,
               r.episodes);
  } else {
    fmt::print(
        "meta-training wall time {:.0f} s; {:.3f} meta-steps/s\n", result.seconds,
        static_cast<double>(result.steps - result.start_step) / std::max(1e-9, result.seconds));
  }
  return 0;
}
