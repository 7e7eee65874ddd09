// Reptile on sinusoid regression (Nichol et al. 2018, section 5), in the setting of
// the MAML example so that the two tables compare side by side.
//
// Meta-trains a 1-40-40-1 ReLU MLP on tasks y = A sin(x - phi) (A in [0.1, 5],
// phi in [0, pi], x in [-5, 5]) with K = 10 support points: each task takes
// --inner-steps full-batch SGD steps of --inner-lr (0.01, the MAML example's step),
// and the initialisation moves by epsilon (0.1 annealed linearly to 0) towards the
// mean of the tasks' weights. Then evaluates on 1,000 unseen tasks the query MSE after
// 0, 1 and 10 SGD steps of --inner-lr for K = 5 and K = 10, beside a baseline
// pretrained on the same tasks by ordinary regression. Writes the table as CSV.
// (With 0.02, ten full-batch steps on 5 points diverge on high-amplitude tasks.)
//
// Meta-trains with train::fit (a progress line on a terminal; nothing written). The
// tasks of a meta-batch train together (ReptileOptions::batch_tasks); --loop trains
// them one by one instead, --threads of them in parallel.
//
// Usage: reptile_sinusoid [--steps N] [--meta-batch N] [--inner-steps N] [--inner-lr X]
//          [--loop] [--threads N] [--seed S] [--out DIR] [--quiet]

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

#include "example_support.hpp"

namespace ml = metalearn;

namespace {

struct Args {
  int steps = 30000;
  ml::Index meta_batch = 5;
  int inner_steps = 5;
  float inner_lr = 0.01f;
  int threads = 1;
  bool loop = false;
  std::uint64_t seed = 1;
  std::string out = "reptile_sinusoid_out";
  bool quiet = false;
};

Args parse(int argc, char** argv) {
  Args a;
  CLI::App app("Reptile on sinusoid regression (Nichol et al. 2018, section 5)",
               "reptile_sinusoid");
  examples::add_at_least(app, "--steps", a.steps, "meta-steps", 0);
  examples::add_at_least(app, "--meta-batch", a.meta_batch, "tasks per meta-step", 1);
  examples::add_at_least(app, "--inner-steps", a.inner_steps, "full-batch SGD steps per task", 1);
  examples::add_positive(app, "--inner-lr", a.inner_lr,
                         "SGD step size of the inner loop and of evaluation");
  app.add_flag("--loop", a.loop,
               "train the tasks of a meta-batch one by one (--threads in parallel) instead of "
               "together");
  examples::add_run_options(app, a.threads, a.seed, a.out, a.quiet);
  examples::parse_or_exit(app, argc, argv);
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  std::error_code ec;
  std::filesystem::create_directories(args.out, ec);
  if (ec) {
    fmt::print(stderr, "cannot create {}: {}\n", args.out, ec.message());
    return 1;
  }

  ml::Generator gen(args.seed);
  ml::nn::MLP<float> model({1, 40, 40, 1}, gen);
  ml::nn::MLP<float> baseline({1, 40, 40, 1}, gen);
  baseline.load_parameters(model.named_parameters());  // same initialisation

  const auto options =
      ml::algorithms::ReptileOptions<float>{.inner_optimizer = ml::algorithms::InnerOptimizer::kSgd,
                                            .inner_lr = args.inner_lr,
                                            .inner_steps = args.inner_steps,
                                            .inner_batch = 0,
                                            .outer_step = 0.1f,
                                            .outer_step_final = 0.0f,
                                            .anneal_steps = args.steps,
                                            .meta_batch = args.meta_batch,
                                            .loss = ml::algorithms::LossKind::kMse,
                                            .threads = args.threads,
                                            .batch_tasks = !args.loop,
                                            .seed = args.seed + 1000};
  ml::algorithms::Reptile<float> reptile(model, options);

  ml::data::SinusoidTasks<float> family({.shots = 10, .queries = 10});
  ml::data::MetaBatchSampler<float> batches(family,
                                            {.batch = options.meta_batch, .seed = args.seed});

  // ---- meta-training --------------------------------------------------------
  fmt::print(
      "Reptile sinusoid: 1-40-40-1 ReLU MLP, K=10, meta-batch {}, {} SGD steps of {:g}, "
      "epsilon 0.1 -> 0, {} meta-steps, {}\n",
      args.meta_batch, args.inner_steps, static_cast<double>(args.inner_lr), args.steps,
      args.loop ? fmt::format("tasks one by one, {} thread(s)", args.threads)
                : "the tasks of a meta-batch together");
  const double train_seconds =
      ml::train::fit(reptile, batches, {.steps = args.steps, .progress = !args.quiet}).seconds;

  // ---- baseline: the same network pretrained on the same tasks by regression --
  examples::pretrain_on_tasks(baseline, family, options.meta_batch, args.seed, args.steps);
  ml::algorithms::Reptile<float> finetune(baseline, options);

  // ---- evaluation on 1,000 unseen tasks (the MAML example's table) ------------
  const auto eval = [](const ml::algorithms::Reptile<float>& r) {
    return [&r](const ml::data::AnyTaskSampler<float>& tasks, std::size_t n, int steps) {
      return r.evaluate(tasks, n, steps);
    };
  };
  const std::string csv_path = args.out + "/results.csv";
  std::vector<double> k10;
  try {
    k10 = examples::sinusoid_table({{"Reptile", "reptile", eval(reptile)},
                                    {"pretrained baseline", "pretrained", eval(finetune)}},
                                   csv_path, 10);
  } catch (const ml::Error& e) {
    fmt::print(stderr, "reptile_sinusoid: {}\n", e.what());
    return 1;
  }

  fmt::print("\nmeta-training: {:.1f} s, {:.0f} meta-steps/s\n", train_seconds,
             train_seconds > 0 ? args.steps / train_seconds : 0.0);
  fmt::print("wrote {}\n", csv_path);
  fmt::print("K=10, 10 steps: Reptile {:.3f} vs pretrained {:.3f}\n", k10[0], k10[1]);
  return 0;
}
