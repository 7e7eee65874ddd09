// Reptile on Omniglot (Nichol, Achiam & Schulman 2018, section 6 and table 3).
//
// The paper's network: 4 blocks of [3x3 convolution with stride 2, 64 channels, batch
// norm with batch statistics, ReLU], then a linear 5-way head. Meta-training: 5-way
// tasks of 10 shots per class, 5 inner Adam steps (lr 1e-3, beta1 = 0) on mini-batches
// of 10, meta-batch 5, outer step size 1 annealed linearly to 0. As in the paper's code,
// the inner Adam's moments carry over from task to task (--fresh-inner-state starts
// every task with a new Adam instead), and every evaluation episode starts from the
// moments training reached. Evaluation on unseen
// characters: 50 Adam steps on mini-batches of 5 of the support set, 1 query per class,
// 5-way 1-shot and 5-shot, non-transductive (each query classified in a batch of the
// support set plus itself, the paper's main numbers) and transductive (all queries in
// one batch). Training characters are augmented with rotations by multiples of 90
// degrees; test characters are not (as in the paper's code).
//
// Without --data (or METALEARN_OMNIGLOT_DIR) it runs on the embedded procedural glyphs.
//
// Trains with train::fit. With --checkpoint DIR it keeps DIR/checkpoint.safetensors
// (the learner's whole state: theta, the carried Adam state and the meta-step count,
// with the run's settings) every --checkpoint-every steps and when training stops, and
// DIR/metrics.jsonl; --resume continues from it, so a long schedule can be trained in
// several --time-limit runs and ends where an uninterrupted run would (the step size
// schedule and mini-batch order follow the step count).
//
// Usage: reptile_omniglot [--data DIR] [--steps N] [--time-limit MIN] [--ways N]
//          [--train-shots K] [--meta-batch N] [--inner-steps N] [--eval-steps N]
//          [--episodes N] [--threads N] [--seed S] [--log-every N] [--out FILE]
//          [--fresh-inner-state] [--checkpoint DIR] [--checkpoint-every N] [--resume]

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
  int steps = 100000;
  double time_limit = 0.0;  // minutes of training in this run; 0: no limit
  ml::Index ways = 5, train_shots = 10, meta_batch = 5;
  int inner_steps = 5, eval_steps = 50;
  int episodes = 1000;
  int threads = 1;
  std::uint64_t seed = 1;
  int log_every = 100;
  bool fresh_inner_state = false;
  std::string out;
  examples::CheckpointArgs checkpoint;
};

Args parse(int argc, char** argv) {
  Args a;
  CLI::App app("Reptile on Omniglot (Nichol, Achiam & Schulman 2018)", "reptile_omniglot");
  examples::add_data_option(app, a.data);
  examples::add_at_least(app, "--steps", a.steps, "meta-steps (epsilon anneals to 0 over them)", 0);
  examples::add_at_least(app, "--time-limit", a.time_limit,
                         "minutes of training in this run (0: none); continue with --resume", 0);
  app.add_option("--ways", a.ways, "classes per task")
      ->capture_default_str()
      ->check(CLI::Range(2, 1000));
  examples::add_at_least(app, "--train-shots", a.train_shots,
                         "examples per class of a training task", 1);
  examples::add_at_least(app, "--meta-batch", a.meta_batch, "tasks per meta-step", 1);
  examples::add_at_least(app, "--inner-steps", a.inner_steps, "inner Adam steps per training task",
                         1);
  examples::add_at_least(app, "--eval-steps", a.eval_steps, "inner Adam steps per test episode", 0);
  examples::add_at_least(app, "--episodes", a.episodes, "test episodes per configuration", 1);
  examples::add_at_least(
      app, "--threads", a.threads,
      "threads for evaluation episodes (and, with --fresh-inner-state, the tasks of a meta-batch)",
      1);
  app.add_option("--seed", a.seed, "seed")->capture_default_str();
  examples::add_at_least(app, "--log-every", a.log_every, "meta-steps between log lines", 1);
  app.add_option("--out", a.out, "markdown file for the results");
  app.add_flag("--fresh-inner-state", a.fresh_inner_state,
               "start every task with a new Adam (default: carry its moments from task to task)");
  examples::add_checkpoint_options(app, a.checkpoint, "meta-steps");
  examples::parse_or_exit(app, argc, argv);
  return a;
}

// The network of the paper: strided convolutions instead of max-pooling.
std::shared_ptr<ml::nn::Sequential<float>> make_model(ml::Index ways, ml::Index image,
                                                      ml::Generator& gen) {
  auto net = std::make_shared<ml::nn::Sequential<float>>();
  ml::Index in = 1, size = image;
  for (int b = 0; b < 4; ++b) {
    net->push_back(std::make_shared<ml::nn::Conv2d<float>>(in, 64, 3, gen, 2, 1));
    net->push_back(std::make_shared<ml::nn::BatchNorm2d<float>>(64));
    net->push_back(std::make_shared<ml::nn::ReLU<float>>());
    in = 64;
    size = (size + 2 - 3) / 2 + 1;
  }
  net->push_back(std::make_shared<ml::nn::Flatten<float>>());
  net->push_back(std::make_shared<ml::nn::Linear<float>>(64 * size * size, ways, gen));
  return net;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  const auto t_start = Clock::now();

  const examples::ClassData classes =
      examples::load_class_data_or_exit(args.data, /*test_rotations=*/false);
  const auto& train_set = classes.train;
  const auto& test_set = classes.test;
  const bool omniglot = classes.omniglot;

  ml::Generator gen(args.seed);
  auto model = make_model(args.ways, train_set->example_shape()[1], gen);
  const auto options = alg::ReptileOptions<float>{.inner_optimizer = alg::InnerOptimizer::kAdam,
                                                  .inner_lr = 1e-3f,
                                                  .adam_beta1 = 0.0,
                                                  .adam_beta2 = 0.999,
                                                  .carry_inner_state = !args.fresh_inner_state,
                                                  .inner_steps = args.inner_steps,
                                                  .inner_batch = 10,
                                                  .eval_inner_steps = args.eval_steps,
                                                  .eval_inner_batch = 5,
                                                  .outer_step = 1.0f,
                                                  .outer_step_final = 0.0f,
                                                  .anneal_steps = args.steps,
                                                  .meta_batch = args.meta_batch,
                                                  .loss = alg::LossKind::kCrossEntropy,
                                                  .transductive = false,
                                                  .threads = args.threads,
                                                  .seed = args.seed + 1000};
  alg::Reptile<float> reptile(*model, options);

  std::unique_ptr<ml::data::EpisodicSampler<float>> train;
  try {
    train = std::make_unique<ml::data::EpisodicSampler<float>>(
        train_set,
        ml::data::EpisodicOptions{.ways = args.ways, .shots = args.train_shots, .queries = 0});
  } catch (const ml::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  ml::data::MetaBatchSampler<float> batches(
      *train, {.batch = options.meta_batch, .seed = args.seed, .prefetch = 2});

  fmt::print(
      "Reptile: 4x[conv stride 2, 64, BN, ReLU] + linear, {}-way {}-shot training tasks, "
      "{} inner Adam steps on batches of 10 ({} state), meta-batch {}, epsilon 1 -> 0 over {} "
      "steps, {} thread(s)\n",
      args.ways, args.train_shots, args.inner_steps, args.fresh_inner_state ? "fresh" : "carried",
      args.meta_batch, args.steps, args.threads);
  std::fflush(stdout);

  double loss = 0.0;  // moving average over the meta-steps of this run
  bool started = false;
  const ml::train::FitOptions fit{
      .steps = args.steps,
      .time_limit = 60.0 * args.time_limit,
      .checkpoint_every = args.checkpoint.every,
      .log_every = args.log_every,
      .run_dir = args.checkpoint.dir,
      .resume = args.checkpoint.resume,
      .progress = false,
      // What a resumed run must share with the run that wrote its checkpoint (epsilon
      // anneals over --steps, so they are one of them).
      .settings = {{"dataset", train_set->name()},
                   {"steps", std::to_string(args.steps)},
                   {"seed", std::to_string(args.seed)},
                   {"ways", std::to_string(args.ways)},
                   {"train_shots", std::to_string(args.train_shots)},
                   {"meta_batch", std::to_string(args.meta_batch)},
                   {"inner_steps", std::to_string(args.inner_steps)},
                   {"inner_state", args.fresh_inner_state ? "fresh" : "carried"}},
      .on_step = [&](std::int64_t step, const alg::StepStats& s) {
        loss = started ? 0.98 * loss + 0.02 * s.post_loss : s.post_loss;
        started = true;
        if (step % args.log_every == 0 || step == args.steps) {
          fmt::print("step {}/{}  last inner loss {:.4f}  epsilon {:.3f}\n", step, args.steps, loss,
                     static_cast<double>(reptile.current_outer_step()));
          std::fflush(stdout);
        }
      }};
  const auto result = examples::fit_or_exit(reptile, batches, fit, "meta-step");
  const double rate = result.steps > result.start_step
                          ? static_cast<double>(result.steps - result.start_step) / result.seconds
                          : 0.0;

  // Evaluation: adapt once per episode, then classify the queries both ways.
  struct Config {
    ml::Index shots;
    double paper, paper_transductive;
  };
  const std::vector<Config> configs{{1, 95.39, 97.68}, {5, 98.90, 99.48}};
  fmt::print("\nTest accuracy over {} episodes (1 query per class), mean +- 95% CI\n",
             args.episodes);
  fmt::print("{:<14} {:>18} {:>8} {:>18} {:>8} {:>12}\n", "episodes", "non-transductive", "paper",
             "transductive", "paper", "episodes/s");
  std::string table =
      "| test episodes | non-transductive (%) | paper | transductive (%) | paper | eval "
      "episodes/s |\n|---|---|---|---|---|---|\n";
  ml::ThreadPool pool(static_cast<std::size_t>(args.threads));
  for (const auto& c : configs) {
    const auto t_eval = Clock::now();
    ml::data::EpisodicSampler<float> test(test_set,
                                          {.ways = args.ways, .shots = c.shots, .queries = 1});
    std::vector<double> plain(static_cast<std::size_t>(args.episodes));
    std::vector<double> trans(plain.size());
    pool.run(plain.size(), [&](std::size_t i) {
      ml::Generator g = alg::episode_generator(args.seed + 2000, i);
      const auto task = test.sample(g);
      const auto fast = reptile.adapt(task, std::nullopt, std::nullopt, i);
      plain[i] = ml::accuracy(reptile.predict_query(task, fast), task.query_labels);
      trans[i] = ml::accuracy(reptile.predict(fast, task.query_x), task.query_labels);
    });
    const auto p = alg::EvalResult::from_values(plain);
    const auto t = alg::EvalResult::from_values(trans);
    const double eps = args.episodes / seconds_since(t_eval);
    const std::string name = fmt::format("{}-way {}-shot", args.ways, c.shots);
    fmt::print("{:<14} {:>10.2f} +- {:>5.2f} {:>8.2f} {:>10.2f} +- {:>5.2f} {:>8.2f} {:>12.1f}\n",
               name, 100 * p.mean, 100 * p.ci95, c.paper, 100 * t.mean, 100 * t.ci95,
               c.paper_transductive, eps);
    std::fflush(stdout);
    fmt::format_to(std::back_inserter(table),
                   "| {} | {:.2f} +- {:.2f} | {:.2f} | {:.2f} +- {:.2f} | {:.2f} | {:.1f} |\n",
                   name, 100 * p.mean, 100 * p.ci95, c.paper, 100 * t.mean, 100 * t.ci95,
                   c.paper_transductive, eps);
  }
  const double total = seconds_since(t_start);
  fmt::print(
      "\ntraining: {} meta-steps in {:.1f} s ({} in this run, {:.2f} meta-steps/s); total wall "
      "time of this run {:.1f} s\n",
      result.steps, result.train_seconds, result.steps - result.start_step, rate, total);
  if (!args.out.empty()) {
    if (!examples::write_results(
            args.out,
            fmt::format(
                "dataset: {}{}\ntraining: {}-way {}-shot, {} of {} meta-steps, {:.1f} s ({} in "
                "this "
                "run, {:.2f} meta-steps/s), {} inner Adam state, threads {}, seed {}\ntotal wall "
                "time of this run: {:.1f} s\n\n{}",
                train_set->name(), omniglot ? "" : " (paper numbers are for Omniglot)", args.ways,
                args.train_shots, result.steps, args.steps, result.train_seconds,
                result.steps - result.start_step, rate,
                args.fresh_inner_state ? "fresh" : "carried", args.threads, args.seed, total,
                table))) {
      return 1;
    }
  }
  return 0;
}
