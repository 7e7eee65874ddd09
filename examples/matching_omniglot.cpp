// Matching Networks on Omniglot (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra
// 2016, section 4.1.1).
//
// Trains the 4-block 64-channel ConvNet (running batch norm) end to end on N-way K-shot
// episodes of the configured shape: a query's label distribution is the softmax over
// the supports of the cosine between embeddings, summed per class, and the loss is the
// queries' cross-entropy (Adam 1e-3, halved every 2000 episodes). --distance euclidean
// attends by the negative squared Euclidean distance instead, and --scale multiplies
// the attention logits (a temperature: cosines lie in [-1, 1], so at scale 1 even a
// perfect match gets little more weight than the others). --train-ways trains on
// episodes of more (or fewer) classes than the test's; --test-ways and --test-shots test
// on episodes of another size than --ways and --shots, which name the run. With --fce the
// embeddings are full context embeddings (appendix A): the supports are read by a
// bidirectional LSTM and each query attends over them for --fce-steps steps; their
// width is the ConvNet4's embedding width for the data's image size (64 for 28x28).
// Then evaluates the same N-way K-shot on unseen characters with a 95% interval,
// beside the paper's number. Omniglot follows Vinyals et al.: 1200 training
// characters, the other 423 for testing, each rotated by 0/90/180/270 degrees to make
// four classes.
//
// Without --data (or METALEARN_OMNIGLOT_DIR) it runs on the embedded procedural glyphs,
// with fewer training and test episodes by default (well under a minute on one core);
// the paper's numbers then do not apply. --steps 0 evaluates the untrained network.
//
// Trains with train::fit. With --checkpoint DIR it keeps DIR/checkpoint.safetensors
// (the learner's whole state: embedding and full context embeddings, batch-norm
// statistics, the Adam state and the episode count, with the run's settings) every
// --checkpoint-every episodes and when training stops, and DIR/metrics.jsonl; --resume
// continues from it exactly (a checkpoint written with other settings is refused), so
// a long schedule can be trained in several --time-limit runs, each evaluating the
// network it reached.
//
// Usage: matching_omniglot [--data DIR] [--ways N] [--shots K] [--queries Q]
//          [--test-queries Q] [--steps N] [--fce] [--fce-steps K]
//          [--distance cosine|euclidean] [--scale X] [--train-ways N] [--test-ways N]
//          [--test-shots K] [--lr X]
//          [--decay-every N] [--threads N] [--seed S] [--episodes N] [--time-limit MIN]
//          [--log-every N] [--checkpoint DIR] [--checkpoint-every N] [--resume]
//          [--out FILE]

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <metalearn/metalearn.hpp>
#include <string>
#include <utility>
#include <vector>

#include "example_support.hpp"

namespace ml = metalearn;
namespace alg = metalearn::algorithms;
using examples::Clock;
using examples::seconds_since;

namespace {

// Defaults that depend on the data: the paper's scale on Omniglot, a run of well
// under a minute on the embedded glyphs.
constexpr int kOmniglotSteps = 20000, kGlyphSteps = 300;
constexpr int kOmniglotEpisodes = 600, kGlyphEpisodes = 100;

struct Args {
  std::string data;
  ml::Index ways = 5, shots = 1, queries = 5, test_queries = 15;
  ml::Index train_ways = 0;  // 0: ways
  ml::Index test_ways = 0;   // 0: ways
  ml::Index test_shots = 0;  // 0: shots
  int steps = -1;            // -1: kOmniglotSteps or kGlyphSteps
  int episodes = -1;         // -1: kOmniglotEpisodes or kGlyphEpisodes
  bool fce = false;
  int fce_steps = 5;
  std::string distance = "cosine";
  double scale = 1.0;
  double lr = 1e-3;
  int decay_every = 2000;
  int threads = 1;
  std::uint64_t seed = 1;
  double time_limit = 0.0;  // minutes of training in this run; 0: no limit
  int log_every = 100;
  examples::CheckpointArgs checkpoint{.dir = {}, .every = 500, .resume = false};
  std::string out;
};

Args parse(int argc, char** argv) {
  Args a;
  CLI::App app("Matching Networks on Omniglot (Vinyals et al. 2016)", "matching_omniglot");
  examples::add_data_option(app, a.data);
  app.add_option("--ways", a.ways, "classes per episode (training and test)")
      ->capture_default_str()
      ->check(CLI::Range(2, 100000));
  app.add_option("--train-ways", a.train_ways,
                 "classes per training episode, when not --ways (as Snell et al. train on "
                 "more classes than they test on)")
      ->check(CLI::Range(2, 100000));
  app.add_option("--test-ways", a.test_ways,
                 "classes per test episode, when not --ways (the run folder's training is "
                 "unchanged: with --resume and nothing left to train, this evaluates a trained "
                 "network on episodes of another size)")
      ->check(CLI::Range(2, 100000));
  app.add_option("--test-shots", a.test_shots,
                 "support examples per class in test episodes, when not --shots (as --test-ways: "
                 "the training is unchanged)")
      ->check(CLI::Range(1, 100000));
  examples::add_at_least(app, "--shots", a.shots, "support examples per class", 1);
  examples::add_at_least(app, "--queries", a.queries, "query examples per class in training", 1);
  examples::add_at_least(app, "--test-queries", a.test_queries, "query examples per class at test",
                         1);
  app.add_option("--steps", a.steps,
                 fmt::format("training episodes (default: {} on Omniglot, {} on the embedded "
                             "glyphs)",
                             kOmniglotSteps, kGlyphSteps))
      ->check(examples::at_least(0));
  app.add_flag("--fce", a.fce, "full context embeddings (paper, appendix A)");
  examples::add_at_least(app, "--fce-steps", a.fce_steps,
                         "attention steps of the full context embeddings of a query", 1);
  app.add_option("--distance", a.distance,
                 "distance of the attention: cosine (the paper's) or euclidean (squared)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cosine", "euclidean"}));
  examples::add_positive(app, "--scale", a.scale,
                         "attention logits are -scale * distance (1: the paper's softmax of "
                         "cosines)");
  examples::add_positive(app, "--lr", a.lr, "Adam learning rate");
  examples::add_at_least(app, "--decay-every", a.decay_every,
                         "episodes between halvings of the rate (0: none)", 0);
  examples::add_at_least(app, "--threads", a.threads,
                         "threads (of a training episode's convolutions and of evaluation)", 1);
  app.add_option("--seed", a.seed, "seed")->capture_default_str();
  app.add_option("--episodes", a.episodes,
                 fmt::format("test episodes (default: {} on Omniglot, {} on the embedded glyphs)",
                             kOmniglotEpisodes, kGlyphEpisodes))
      ->check(examples::at_least(1));
  examples::add_at_least(app, "--time-limit", a.time_limit,
                         "minutes of training in this run (0: none); continue with --resume", 0);
  examples::add_at_least(app, "--log-every", a.log_every, "episodes between log lines", 1);
  examples::add_checkpoint_options(app, a.checkpoint, "training episodes");
  app.add_option("--out", a.out, "markdown file for the results");
  examples::parse_or_exit(app, argc, argv);
  return a;
}

// The width of the embeddings that `options` gives for the examples of `data`, found by
// running such a network (not the one trained) on one example.
ml::Index embedding_width(const ml::nn::ConvNet4Options& options,
                          const ml::data::ClassDataset& data) {
  ml::Generator unused(0);
  ml::nn::ConvNet4<float> probe(options, unused);
  probe.eval();
  const ml::Shape image = data.example_shape();
  const ml::Tensor<float> e =
      probe.forward(ml::zeros<float>(ml::Shape{1, image[0], image[1], image[2]}));
  return e.shape()[1];
}

// The paper's Omniglot accuracy (%) for `ways`-way `shots`-shot (Table 1, Matching Nets
// without fine-tuning); 0 for a configuration it does not report. Table 1 has one
// number per configuration, shown beside runs with and without --fce alike.
double paper_accuracy(ml::Index ways, ml::Index shots) {
  const std::map<std::pair<ml::Index, ml::Index>, double> table{
      {{5, 1}, 98.1}, {{5, 5}, 98.9}, {{20, 1}, 93.8}, {{20, 5}, 98.5}};
  const auto it = table.find({ways, shots});
  return it == table.end() ? 0.0 : it->second;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse(argc, argv);
  if (args.train_ways == 0) args.train_ways = args.ways;
  if (args.test_ways == 0) args.test_ways = args.ways;
  if (args.test_shots == 0) args.test_shots = args.shots;
  const auto t_start = Clock::now();

  // ---- data -------------------------------------------------------------------
  const examples::ClassData classes =
      examples::load_class_data_or_exit(args.data, /*test_rotations=*/true);
  const bool omniglot = classes.omniglot;
  if (args.steps < 0) args.steps = omniglot ? kOmniglotSteps : kGlyphSteps;
  if (args.episodes < 0) args.episodes = omniglot ? kOmniglotEpisodes : kGlyphEpisodes;
  const ml::Shape image = classes.train->example_shape();
  if (image.dim() != 3 || image[1] != image[2]) {
    fmt::print(stderr, "error: {} has examples of shape {}; expected square images [C, S, S]\n",
               classes.train->name(), image.to_string());
    return 1;
  }

  // ---- model ------------------------------------------------------------------
  const bool cosine = args.distance == "cosine";
  auto options = alg::MatchingNetOptions<float>{
      .distance = cosine ? ml::Distance::kCosine : ml::Distance::kSquaredEuclidean,
      .scale = static_cast<float>(args.scale),
      .lr = args.lr,
      .lr_decay = 0.5,
      .lr_decay_every = args.decay_every,
      .threads = args.threads,
      .seed = args.seed + 1000};
  options.embedding.in_channels = image[0];
  options.embedding.image_size = image[1];
  const ml::nn::ConvNet4Options& convnet = options.embedding;
  ml::Index width = 0;
  try {
    width = embedding_width(convnet, *classes.train);
  } catch (const ml::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  if (args.fce) {
    options.full_context_dim = width;
    options.full_context_steps = args.fce_steps;
  }

  std::unique_ptr<alg::MatchingNet<float>> matching;
  std::unique_ptr<ml::data::EpisodicSampler<float>> train, test;
  try {
    ml::Generator gen(args.seed);
    matching = std::make_unique<alg::MatchingNet<float>>(gen, options);
    train = std::make_unique<ml::data::EpisodicSampler<float>>(
        classes.train, ml::data::EpisodicOptions{
                           .ways = args.train_ways, .shots = args.shots, .queries = args.queries});
    test = std::make_unique<ml::data::EpisodicSampler<float>>(
        classes.test,
        ml::data::EpisodicOptions{
            .ways = args.test_ways, .shots = args.test_shots, .queries = args.test_queries});
  } catch (const ml::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  ml::data::MetaBatchSampler<float> batches(*train, {.batch = 1, .seed = args.seed, .prefetch = 2});

  const std::string fce =
      args.fce ? fmt::format("full context embeddings (width {}, {} attention steps)", width,
                             args.fce_steps)
               : "no full context embeddings";
  const std::string limit =
      args.time_limit > 0 ? fmt::format(", time limit {:g} min", args.time_limit) : "";
  fmt::print(
      "Matching Networks {}-way {}-shot: ConvNet4 (64 channels, running batch norm, embedding "
      "width {}), {}, {} attention (scale {:g}); {}-way {}-shot {}-query training episodes, Adam "
      "{:.0e} halved every {}, up to {} episodes{}, {} thread(s)\n",
      args.test_ways, args.test_shots, width, fce, cosine ? "cosine" : "squared Euclidean",
      args.scale, args.train_ways, args.shots, args.queries, args.lr, args.decay_every, args.steps,
      limit, args.threads);
  std::fflush(stdout);

  // ---- training ---------------------------------------------------------------
  double loss = 0.0, acc = 0.0;  // moving averages of the training episodes
  std::int64_t first = -1;
  const auto t_train = Clock::now();
  // A checkpoint written with other values is not resumed; the number of episodes may
  // grow (the learning-rate schedule does not depend on it). The distance, scale and
  // training ways are stored when they are not the defaults, so run folders written
  // before these options existed still resume.
  ml::io::Metadata settings{{"dataset", classes.train->name()},
                            {"ways", std::to_string(args.ways)},
                            {"shots", std::to_string(args.shots)},
                            {"queries", std::to_string(args.queries)},
                            {"full_context", args.fce ? std::to_string(width) : "0"},
                            {"full_context_steps", args.fce ? std::to_string(args.fce_steps) : "0"},
                            {"lr", fmt::format("{:.17g}", args.lr)},
                            {"decay_every", std::to_string(args.decay_every)},
                            {"seed", std::to_string(args.seed)}};
  if (!cosine) settings["distance"] = args.distance;
  if (args.train_ways != args.ways) settings["train_ways"] = std::to_string(args.train_ways);
  if (args.scale != 1.0) settings["scale"] = fmt::format("{:.17g}", args.scale);
  // train::fit compares only the settings this run stores; a run with the defaults
  // stores none of these three keys, so it checks here that the folder holds none
  // that differ from this run's.
  const std::filesystem::path saved =
      std::filesystem::path(args.checkpoint.dir) / "checkpoint.safetensors";
  if (args.checkpoint.resume && !args.checkpoint.dir.empty() && std::filesystem::exists(saved)) {
    try {
      const ml::io::Metadata stored = ml::io::read_safetensors_metadata(saved);
      // Absent keys are the paper's attention (the cosine at scale 1) and training
      // episodes of the test episodes' ways.
      const std::vector<std::pair<std::string, std::string>> defaults{
          {"distance", "cosine"}, {"scale", "1"}, {"train_ways", std::to_string(args.ways)}};
      for (const auto& [key, paper] : defaults) {
        const auto was = stored.find(key);
        const auto now = settings.find(key);
        const std::string before = was == stored.end() ? paper : was->second;
        const std::string after = now == settings.end() ? paper : now->second;
        if (before != after) {
          fmt::print(stderr,
                     "error: {} was written with {} {}, this run has {} {}; use another "
                     "folder\n",
                     saved.string(), key, before, key, after);
          return 1;
        }
      }
    } catch (const ml::Error& e) {
      fmt::print(stderr, "error: {}\n", e.what());
      return 1;
    }
  }
  ml::train::FitOptions fit{
      .steps = args.steps,
      .time_limit = 60.0 * args.time_limit,
      .checkpoint_every = args.checkpoint.every,
      .log_every = args.log_every,
      .run_dir = args.checkpoint.dir,
      .resume = args.checkpoint.resume,
      .progress = false,
      .settings = settings,
      .on_step = [&](std::int64_t step, const alg::StepStats& stats) {
        if (first < 0) {
          first = step - 1;
          loss = stats.meta_loss;
          acc = stats.post_accuracy.value_or(0.0);
        } else {
          loss = 0.98 * loss + 0.02 * stats.meta_loss;
          acc = 0.98 * acc + 0.02 * stats.post_accuracy.value_or(0.0);
        }
        if (step % args.log_every == 0 || step == args.steps) {
          const double elapsed = seconds_since(t_train);
          fmt::print("step {}/{}  loss {:.4f}  train acc {:.4f}  lr {:.2e}  {:.2f} episodes/s\n",
                     step, args.steps, loss, acc, matching->current_lr(),
                     static_cast<double>(step - first) / std::max(elapsed, 1e-9));
          std::fflush(stdout);
        }
      }};
  const auto result = examples::fit_or_exit(*matching, batches, fit, "episode");
  const double rate = result.steps > result.start_step
                          ? static_cast<double>(result.steps - result.start_step) / result.seconds
                          : 0.0;
  const std::string status =
      result.steps >= args.steps
          ? "complete"
          : fmt::format("stopped by the time limit at episode {} of {}; continue with --resume",
                        result.steps, args.steps);

  // ---- evaluation -------------------------------------------------------------
  const auto t_eval = Clock::now();
  const alg::EvalResult r = matching->evaluate(*test, static_cast<std::size_t>(args.episodes));
  const double eval_rate = args.episodes / seconds_since(t_eval);
  const double paper = paper_accuracy(args.test_ways, args.test_shots);
  // The paper measured Omniglot: no number to compare on other data.
  const std::string paper_text = omniglot && paper > 0 ? fmt::format("{:.1f}", paper) : "-";
  // The attention is named when it is not the paper's (cosine, scale 1).
  const std::string attention =
      cosine && args.scale == 1.0
          ? ""
          : fmt::format(", {}{}", cosine ? "cosine" : "Euclidean",
                        args.scale == 1.0 ? "" : fmt::format(" x{:g}", args.scale));
  const std::string trained =
      args.train_ways == args.test_ways && args.shots == args.test_shots
          ? ""
          : fmt::format(", trained {}-way {}-shot", args.train_ways, args.shots);
  const std::string name = fmt::format("{}-way {}-shot{}{}{}", args.test_ways, args.test_shots,
                                       args.fce ? " FCE" : "", attention, trained);
  fmt::print("\nTest accuracy over {} episodes ({} queries per class), mean +- 95% CI\n",
             args.episodes, args.test_queries);
  fmt::print("{:<20} {:>18} {:>8} {:>8} {:>14}\n", "episodes", "accuracy (%)", "paper", "chance",
             "episodes/s");
  fmt::print("{:<20} {:>10.2f} +- {:>5.2f} {:>8} {:>8.1f} {:>14.1f}\n", name, 100 * r.mean,
             100 * r.ci95, paper_text, 100.0 / static_cast<double>(args.test_ways), eval_rate);
  const double total = seconds_since(t_start);
  fmt::print(
      "\ntraining: {} episodes in {:.1f} s ({} in this run, {:.2f} episodes/s), {}; total wall "
      "time of this run {:.1f} s\n",
      result.steps, result.train_seconds, result.steps - result.start_step, rate, status, total);
  if (!args.out.empty()) {
    if (!examples::write_results(
            args.out,
            fmt::format(
                "dataset: {}\ntraining: {}-way {}-shot {}-query, {}, {} attention (scale {:g}), {} "
                "episodes, {:.1f} s ({} in this run, {:.2f} episodes/s), threads {}, seed "
                "{}\nstatus: {}\ntotal wall time of this run: {:.1f} s\n\n"
                "| test episodes | accuracy (%) | paper (%) | chance (%) | eval episodes/s |\n"
                "|---|---|---|---|---|\n"
                "| {} | {:.2f} +- {:.2f} | {} | {:.1f} | {:.1f} |\n",
                classes.train->name(), args.train_ways, args.shots, args.queries, fce,
                cosine ? "cosine" : "squared Euclidean", args.scale, result.steps,
                result.train_seconds, result.steps - result.start_step, rate, args.threads,
                args.seed, status, total, name, 100 * r.mean, 100 * r.ci95, paper_text,
                100.0 / static_cast<double>(args.test_ways), eval_rate))) {
      return 1;
    }
  }
  return 0;
}
