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

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <metalearn/metalearn.hpp>
#include <string>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;
using Clock = std::chrono::steady_clock;

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
};

[[noreturn]] void usage(int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: maml_omniglot [--data DIR] [--ways N] [--shots K] [--queries Q] "
               "[--eval-queries Q] [--steps N] [--meta-batch B] [--inner-lr A] "
               "[--inner-steps S] [--eval-steps S] [--outer-lr B] [--eval-every N] "
               "[--eval-episodes N] [--threads N] [--first-order] [--seed S] [--out DIR] "
               "[--resume]\n");
  std::exit(code);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto v = [&]() -> std::string {
      if (i + 1 >= argc) usage(2);
      return argv[++i];
    };
    try {
      if (k == "--data")
        a.data = v();
      else if (k == "--ways")
        a.ways = std::stoll(v());
      else if (k == "--shots")
        a.shots = std::stoll(v());
      else if (k == "--queries")
        a.queries = std::stoll(v());
      else if (k == "--eval-queries")
        a.eval_queries = std::stoll(v());
      else if (k == "--steps")
        a.steps = std::stoi(v());
      else if (k == "--meta-batch")
        a.meta_batch = std::stoi(v());
      else if (k == "--inner-lr")
        a.inner_lr = std::stof(v());
      else if (k == "--inner-steps")
        a.inner_steps = std::stoi(v());
      else if (k == "--eval-steps")
        a.eval_steps = std::stoi(v());
      else if (k == "--outer-lr")
        a.outer_lr = std::stof(v());
      else if (k == "--eval-every")
        a.eval_every = std::stoi(v());
      else if (k == "--eval-episodes")
        a.eval_episodes = std::stoul(v());
      else if (k == "--threads")
        a.threads = std::stoi(v());
      else if (k == "--seed")
        a.seed = std::stoull(v());
      else if (k == "--out")
        a.out = v();
      else if (k == "--first-order")
        a.first_order = true;
      else if (k == "--resume")
        a.resume = true;
      else if (k == "--help" || k == "-h")
        usage(0);
      else {
        std::fprintf(stderr, "unknown option %s\n", k.c_str());
        usage(2);
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "bad value for %s\n", k.c_str());
      usage(2);
    }
  }
  if (a.queries == 0) a.queries = a.shots;  // the reference code's K queries per class
  if (a.ways < 2 || a.shots < 1 || a.queries < 1 || a.steps < 0 || a.meta_batch < 1 ||
      a.threads < 1 || a.eval_every < 1) {
    usage(2);
  }
  if (a.data.empty()) {
    if (const char* env = std::getenv("METALEARN_OMNIGLOT_DIR")) a.data = env;
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  std::shared_ptr<const ml::data::ClassDataset> train, test;
  std::string source;
  try {
    if (!args.data.empty()) {
      const auto t0 = Clock::now();
      auto all = std::make_shared<ml::data::OmniglotDataset>(ml::data::OmniglotOptions{
          .root = args.data, .split = ml::data::OmniglotSplit::vinyals_train, .rotations = true});
      test = std::make_shared<ml::data::OmniglotDataset>(
          all->with_split(ml::data::OmniglotSplit::vinyals_test, false));
      train = all;
      source = "Omniglot at " + args.data;
      std::printf(
          "loaded Omniglot in %.2f s: %lld training classes (with rotations), %lld test "
          "classes\n",
          std::chrono::duration<double>(Clock::now() - t0).count(),
          static_cast<long long>(train->num_classes()),
          static_cast<long long>(test->num_classes()));
    } else {
      train = std::make_shared<ml::data::ProceduralGlyphs>(
          ml::data::ProceduralGlyphsOptions{.split = ml::data::Split::train});
      test = std::make_shared<ml::data::ProceduralGlyphs>(
          ml::data::ProceduralGlyphsOptions{.split = ml::data::Split::test});
      source = "embedded procedural glyphs (no --data or METALEARN_OMNIGLOT_DIR given)";
    }
  } catch (const ml::Error& e) {
    std::fprintf(stderr, "maml_omniglot: %s\n", e.what());
    return 1;
  }

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
    const auto saved = ml::io::load_checkpoint<float>(checkpoint);
    maml.load_meta_parameters(saved.parameters);
    if (saved.optimizer) maml.load_outer_state(*saved.optimizer);
    start = std::stoi(saved.metadata.at("step"));
    std::printf("resumed from %s at step %d%s\n", checkpoint.c_str(), start,
                saved.optimizer ? "" : " (no optimizer state saved: the outer optimizer restarts)");
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
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
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
      ml::io::save_checkpoint(
          checkpoint,
          ml::io::TrainingCheckpoint<float>{maml.meta_parameters(),
                                            maml.outer_state(),
                                            {{"step", std::to_string(step)}, {"source", source}}});
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
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("meta-training wall time %.0f s; %.3f meta-steps/s\n", seconds,
                (args.steps - start) / std::max(1e-9, seconds));
  }
  return 0;
}
