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
// Writes DIR/metrics.csv (one row per evaluation) and DIR/meta_parameters.safetensors
// (meta-parameters, outer Adam state and step: --resume continues exactly).

#include <algorithm>
#include <chrono>
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
using examples::Clock;

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
  app.add_option("--out", a.out, "output folder (metrics.csv, meta_parameters.safetensors)")
      ->capture_default_str();
  app.add_flag("--resume", a.resume, "continue from the checkpoint in --out when it exists");
  app.add_option("--keep", a.keep,
                 "meta-steps whose checkpoint is also kept as meta_parameters_step<N>.safetensors "
                 "(each must be a multiple of --eval-every)")
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
  ml::nn::ConvNet4<float> model(ml::nn::ConvNet4Options{}.ways(args.ways), gen);
  ml::algorithms::Maml<float> maml(model, alg::MamlOptions<float>{}
                                              .loss(alg::LossKind::kCrossEntropy)
                                              .inner_lr(args.inner_lr)
                                              .inner_steps(args.inner_steps)
                                              .eval_inner_steps(args.eval_steps)
                                              .outer_lr(args.outer_lr)
                                              .first_order(args.first_order)
                                              .threads(args.threads)
                                              .seed(args.seed + 7));
  const std::filesystem::path out = args.out;
  std::filesystem::create_directories(out);
  const auto checkpoint = out / "meta_parameters.safetensors";
  int start = 0;
  if (args.resume && std::filesystem::exists(checkpoint)) {
    const ml::io::Metadata saved = ml::train::load_checkpoint(checkpoint, maml);
    start = std::stoi(saved.at("step"));
    std::printf("resumed from %s at step %d\n", checkpoint.c_str(), start);
  }

  ml::data::EpisodicSampler<float> train_episodes(
      train, {.ways = args.ways, .shots = args.shots, .queries = args.queries});
  ml::data::EpisodicSampler<float> test_episodes(
      test, {.ways = args.ways, .shots = args.shots, .queries = args.eval_queries});
  ml::data::MetaBatchSampler<float> batches(
      train_episodes, {.batch = args.meta_batch, .seed = args.seed, .prefetch = 2});
  batches.set_position(static_cast<std::uint64_t>(start));

  std::printf(
      "MAML %lld-way %lld-shot on %s\nConvNet4, meta-batch %d, inner lr %.2f x %d step(s) "
      "(%d at test), %s, Adam %.0e, %d thread(s), %d meta-steps\n",
      static_cast<long long>(args.ways), static_cast<long long>(args.shots), source.c_str(),
      args.meta_batch, static_cast<double>(args.inner_lr), args.inner_steps, args.eval_steps,
      args.first_order ? "first order" : "second order", static_cast<double>(args.outer_lr),
      args.threads, args.steps);
  ml::io::MetricsLog log(out / "metrics.csv", /*append=*/start > 0);
  const auto t0 = Clock::now();
  double loss_avg = 0.0, acc_avg = 0.0;
  int window = 0;
  for (int step = start + 1; step <= args.steps; ++step) {
    const auto stats = maml.meta_step(batches.next());
    loss_avg += stats.meta_loss;
    acc_avg += stats.post_accuracy;
    ++window;
    const double elapsed = examples::seconds_since(t0);
    std::fprintf(stderr, "\rstep %d/%d  meta-loss %.3f  query acc %.3f  %.2f steps/s   ", step,
                 args.steps, stats.meta_loss, stats.post_accuracy, (step - start) / elapsed);
    if (step % args.eval_every == 0 || step == args.steps) {
      const bool last = step == args.steps;
      const auto r = maml.evaluate(test_episodes, last ? args.eval_episodes : 100);
      std::fprintf(stderr, "\n");
      std::printf(
          "step %6d  train loss %.3f acc %.3f | test acc %.2f%% +- %.2f%% (%zu episodes)  "
          "%.0f s\n",
          step, loss_avg / window, acc_avg / window, 100 * r.mean, 100 * r.ci95, r.episodes,
          elapsed);
      std::fflush(stdout);
      log.write({{"step", step},
                 {"train_loss", loss_avg / window},
                 {"train_accuracy", acc_avg / window},
                 {"test_accuracy", r.mean},
                 {"test_ci95", r.ci95},
                 {"episodes", static_cast<double>(r.episodes)},
                 {"seconds", elapsed}});
      ml::train::save_checkpoint(checkpoint, maml,
                                 {{"step", std::to_string(step)}, {"source", source}});
      if (std::find(args.keep.begin(), args.keep.end(), step) != args.keep.end()) {
        const auto kept = out / ("meta_parameters_step" + std::to_string(step) + ".safetensors");
        std::filesystem::copy_file(checkpoint, kept,
                                   std::filesystem::copy_options::overwrite_existing);
      }
      loss_avg = acc_avg = 0.0;
      window = 0;
    }
  }
  if (args.steps <= start) {
    const auto r = maml.evaluate(test_episodes, args.eval_episodes);
    std::printf("test accuracy %.2f%% +- %.2f%% over %zu episodes\n", 100 * r.mean, 100 * r.ci95,
                r.episodes);
  }
  if (args.steps > start) {
    const double seconds = examples::seconds_since(t0);
    std::printf("meta-training wall time %.0f s; %.3f meta-steps/s\n", seconds,
                (args.steps - start) / std::max(1e-9, seconds));
  }
  return 0;
}
