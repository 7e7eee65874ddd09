// MAML on sinusoid regression (Finn et al. 2017, section 5.1).
//
// Meta-trains a 1-40-40-1 ReLU MLP on tasks y = A sin(x - phi) (A in [0.1, 5],
// phi in [0, pi], x in [-5, 5]) with K = 10 support points, meta-batch 25, one
// inner SGD step of 0.01 and Adam 1e-3, then evaluates on 1,000 unseen tasks the
// query MSE after 0, 1 and 10 adaptation steps for K = 5 and K = 10, beside a
// baseline pretrained on the same tasks by ordinary regression. Writes the table
// as CSV and an SVG plot of one task.
//
// Meta-trains with train::fit (a progress line on a terminal; nothing written). The
// meta-batch runs as one graph (MamlOptions::batch_tasks); --loop adapts the tasks one
// by one instead, --threads of them in parallel.
//
// Usage: maml_sinusoid [--steps N (20000)] [--loop] [--threads N] [--seed S] [--out DIR]
//          [--quiet]

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

#include "example_support.hpp"

namespace ml = metalearn;

namespace {

struct Args {
  int steps = 20000;
  int threads = 1;
  bool loop = false;
  std::uint64_t seed = 1;
  std::string out = "maml_sinusoid_out";
  bool quiet = false;
};

Args parse(int argc, char** argv) {
  Args a;
  CLI::App app("MAML on sinusoid regression (Finn et al. 2017, section 5.1)", "maml_sinusoid");
  examples::add_at_least(app, "--steps", a.steps, "meta-steps (the paper uses 70000)", 0);
  app.add_flag("--loop", a.loop,
               "adapt the tasks of a meta-batch one by one (--threads in parallel) instead of "
               "as one graph");
  examples::add_run_options(app, a.threads, a.seed, a.out, a.quiet);
  examples::parse_or_exit(app, argc, argv);
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  std::filesystem::create_directories(args.out);

  ml::Generator gen(args.seed);
  ml::nn::MLP<float> model({1, 40, 40, 1}, gen);
  ml::nn::MLP<float> baseline({1, 40, 40, 1}, gen);
  baseline.load_parameters(model.named_parameters());  // same initialisation

  const auto options = ml::algorithms::MamlOptions<float>{.inner_lr = 0.01f,
                                                          .inner_steps = 1,
                                                          .outer_lr = 1e-3f,
                                                          .threads = args.threads,
                                                          .batch_tasks = !args.loop,
                                                          .seed = args.seed + 1000};
  ml::algorithms::Maml<float> maml(model, options);

  ml::data::SinusoidTasks<float> family({.shots = 10, .queries = 10});
  ml::data::MetaBatchSampler<float> batches(family, {.batch = 25, .seed = args.seed});

  // ---- meta-training --------------------------------------------------------
  fmt::print(
      "MAML sinusoid: 1-40-40-1 ReLU MLP, K=10, meta-batch 25, inner lr 0.01 (1 step), "
      "Adam 1e-3, {} meta-steps, {}\n",
      args.steps,
      args.loop ? fmt::format("tasks one by one, {} thread(s)", args.threads)
                : "the meta-batch as one graph");
  const double train_seconds =
      ml::train::fit(maml, batches, {.steps = args.steps, .progress = !args.quiet}).seconds;

  // ---- baseline: the same network pretrained on the same tasks by regression --
  examples::pretrain_on_tasks(baseline, family, 25, args.seed, args.steps);
  ml::algorithms::Maml<float> finetune(baseline, options);

  // ---- evaluation on 1,000 unseen tasks ---------------------------------------
  const auto eval = [](const ml::algorithms::Maml<float>& m) {
    return [&m](const ml::data::AnyTaskSampler<float>& tasks, std::size_t n, int steps) {
      return m.evaluate(tasks, n, steps);
    };
  };
  std::vector<double> k10;
  try {
    k10 = examples::sinusoid_table(
        {{"MAML", "maml", eval(maml)}, {"pretrained baseline", "pretrained", eval(finetune)}},
        args.out + "/results.csv", 1);
  } catch (const ml::Error& e) {
    fmt::print(stderr, "maml_sinusoid: {}\n", e.what());
    return 1;
  }

  // ---- one task, plotted ------------------------------------------------------
  ml::data::SinusoidTasks<float> plot_family({.shots = 10, .queries = 100});
  ml::Generator plot_gen(args.seed + 7);
  const auto task = plot_family.sample(plot_gen);
  std::vector<double> grid;
  for (int i = 0; i <= 200; ++i) grid.push_back(-5.0 + 0.05 * i);
  std::vector<float> gridf(grid.begin(), grid.end());
  auto x = ml::from_vector<float>(gridf, {static_cast<ml::Index>(grid.size()), 1});
  auto before = maml.predict(maml.adapt(task, 0), x);
  auto after1 = maml.predict(maml.adapt(task, 1), x);
  auto after10 = maml.predict(maml.adapt(task, 10), x);
  std::vector<double> truth, b, a1, a10, px, py;
  const double amp = task.param("amplitude"), phase = task.param("phase");
  for (std::size_t i = 0; i < grid.size(); ++i) {
    truth.push_back(amp * std::sin(grid[i] - phase));
    b.push_back(before.data()[i]);
    a1.push_back(after1.data()[i]);
    a10.push_back(after10.data()[i]);
  }
  for (ml::Index i = 0; i < task.support_x.numel(); ++i) {
    px.push_back(task.support_x.data()[i]);
    py.push_back(task.support_y.data()[i]);
  }
  examples::SvgPlot plot;
  plot.x0 = -5;
  plot.x1 = 5;
  plot.y0 = -6;
  plot.y1 = 6;
  plot.grid = grid;

  plot.curves = {{"true function", "#2a9d8f", truth, false},
                 {"MAML init (0 steps)", "#999999", b, false},
                 {"after 1 step", "#e76f51", a1, false},
                 {"after 10 steps", "#264653", a10, false}};
  plot.points = {{"support points", "black", px, py, 4.0}};
  examples::write_svg(args.out + "/task.svg", plot);

  fmt::print("\nmeta-training: {:.1f} s, {:.0f} meta-steps/s\n", train_seconds,
             train_seconds > 0 ? args.steps / train_seconds : 0.0);
  fmt::print("wrote {0}/results.csv and {0}/task.svg\n", args.out);
  fmt::print("K=10, 1 step: MAML {:.3f} vs pretrained {:.3f}\n", k10[0], k10[1]);
  return 0;
}
