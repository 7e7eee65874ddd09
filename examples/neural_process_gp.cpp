// Neural Processes on Gaussian-process regression (the DeepMind neural-processes
// protocol): functions drawn from a GP with an EQ kernel (length scale 0.4, signal 1.0,
// observation noise 0.02), x in [-2, 2]; per task 3..9 context points and 2..9 further
// target points for the CNP (3..49 and 2..49 for the NP and the ANP), targets
// including the context; batches of 64 tasks; Adam 1e-4; the reference network sizes
// (the ANP: 8-head cross-attention, queries and keys through a 2 x 128 MLP).
//
// With --random-kernel, the ANP notebook's tasks: each task's EQ kernel has its length
// scale from [0.1, 0.6) and its signal scale from [0.1, 1.0) (that notebook also uses
// batches of 16: --batch 16).
//
// Usage: neural_process_gp [--model cnp|np|anp] [--steps 80000] [--batch 64]
//          [--eval-every 10000] [--eval-episodes 32000] [--threads 2] [--out DIR]
//          [--resume] [--time-limit MIN] [--seed 1] [--random-kernel]
// Trains with train::fit: DIR/checkpoint.safetensors (continue with --resume),
// DIR/checkpoint_step<N>.safetensors at every evaluation, DIR/metrics.jsonl. The
// evaluation is the mean per-point predictive log-likelihood over all targets (context
// included) of --eval-episodes fixed tasks drawn like the training tasks (the NP: a
// Monte Carlo estimate over 50 draws of z from the prior), printed beside the exact GP's
// on the same tasks. At the end, DIR/predictive.svg: one test task's context and targets,
// the model's predictive mean and two-sigma band and the exact GP's given the same
// context (the same task for every model run with the same seed).

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

#include "example_support.hpp"

namespace ml = metalearn;
namespace alg = metalearn::algorithms;

namespace {

struct Args : examples::NeuralProcessArgs {
  std::size_t eval_episodes = 32000;
  bool random_kernel = false;
};

Args parse(int argc, char** argv) {
  Args a;
  a.steps = 80000;
  a.batch = 64;
  a.eval_every = 10000;
  a.threads = 2;
  a.out = "neural_process_gp_out";
  CLI::App app("Neural Processes on Gaussian-process regression", "neural_process_gp");
  a.add(app, "tasks");
  examples::add_at_least(app, "--eval-episodes", a.eval_episodes, "tasks of each evaluation", 1);
  app.add_flag("--random-kernel", a.random_kernel,
               "the ANP notebook's tasks: each task's length scale from [0.1, 0.6) and signal "
               "scale from [0.1, 1.0)");
  examples::parse_or_exit(app, argc, argv);
  return a;
}

template <class L>
int train(L& learner, const Args& args, const ml::data::GaussianProcessOptions& protocol) {
  ml::data::GaussianProcessTasks<float> tasks(protocol);
  {
    // The exact GP's log-likelihood on the evaluation's tasks: the bound above which a
    // model would have a bug.
    std::vector<double> oracle(args.eval_episodes);
    for (std::size_t i = 0; i < oracle.size(); ++i) {
      ml::Generator g = alg::episode_generator(learner.options().seed, i);
      oracle[i] = tasks.oracle_log_likelihood(tasks.sample(g));
    }
    const auto r = alg::EvalResult::from_values(std::move(oracle));
    fmt::print("GP oracle on the evaluation tasks: log-likelihood per target {:.4f} +- {:.4f}\n",
               r.mean, r.ci95);
  }
  ml::data::MetaBatchSampler<float> batches(tasks, {.batch = args.batch, .seed = args.seed});
  const ml::data::AnyTaskSampler<float> test(tasks);
  const ml::train::FitOptions options = args.fit_options(
      args.eval_episodes,
      args.random_kernel ? ml::io::Metadata{{"kernel", "random"}} : ml::io::Metadata{});
  examples::fit_with_evaluations(learner, batches, test, options, "log-likelihood per target",
                                 "tasks");

  // One test task: the model's predictive mean and two-sigma band beside the exact GP's
  // given the same context (the same task for every model and seed-1 run).
  ml::Generator figure_gen(args.seed + 2000);
  const ml::data::Task<float> task = tasks.sample(figure_gen);
  std::vector<double> grid;
  for (int i = 0; i <= 200; ++i) {
    grid.push_back(protocol.x_min + (protocol.x_max - protocol.x_min) * i / 200.0);
  }
  const std::vector<float> gridf(grid.begin(), grid.end());
  ml::Tensor<float> p;
  {
    ml::autograd::NoGradGuard no_grad;
    p = learner.predict(learner.adapt(task),
                        ml::from_vector<float>(gridf, {static_cast<ml::Index>(grid.size()), 1}));
  }
  const auto exact = tasks.oracle_predictive(task, grid);
  examples::SvgPlot plot;
  plot.x0 = protocol.x_min;
  plot.x1 = protocol.x_max;
  plot.y0 = -3;
  plot.y1 = 3;
  plot.grid = grid;

  examples::SvgPlot::Band band{"#e76f51", {}, {}};
  examples::SvgPlot::Curve mean{
      args.model + " predictive mean (band: 2 sigma)", "#e76f51", {}, false};
  examples::SvgPlot::Curve gp{"exact GP mean and 2 sigma", "#264653", {}, true};
  examples::SvgPlot::Curve gp_low{"", "#264653", {}, true}, gp_high{"", "#264653", {}, true};
  for (std::size_t i = 0; i < grid.size(); ++i) {
    const double m = p.data()[2 * i], sd = p.data()[2 * i + 1];
    mean.y.push_back(m);
    band.lower.push_back(m - 2 * sd);
    band.upper.push_back(m + 2 * sd);
    const double gs = std::sqrt(exact.variance[i]);
    gp.y.push_back(exact.mean[i]);
    gp_low.y.push_back(exact.mean[i] - 2 * gs);
    gp_high.y.push_back(exact.mean[i] + 2 * gs);
  }
  plot.bands = {band};
  plot.curves = {mean, gp, gp_low, gp_high};
  const auto column = [](const ml::Tensor<float>& t) {
    return std::vector<double>(t.data(), t.data() + t.numel());
  };
  plot.points = {{"targets", "#999999", column(task.query_x), column(task.query_y), 2.5},
                 {"context", "black", column(task.support_x), column(task.support_y), 4.0}};
  const std::string path = args.out + "/predictive.svg";
  if (!examples::write_svg(path, plot)) return 1;
  fmt::print("wrote {}\n", path);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  const bool cnp = args.model == "cnp";
  const ml::Index most = cnp ? 9 : 49;
  const double random = args.random_kernel ? 1.0 : 0.0;
  const ml::data::GaussianProcessOptions protocol{.length_scale = args.random_kernel ? 0.1 : 0.4,
                                                  .signal_scale = args.random_kernel ? 0.1 : 1.0,
                                                  .length_scale_max = 0.6 * random,
                                                  .signal_scale_max = 1.0 * random,
                                                  .noise_std = 0.02,
                                                  .min_context = 3,
                                                  .max_context = most,
                                                  .min_target = 2,
                                                  .max_target = most,
                                                  .x_min = -2.0,
                                                  .x_max = 2.0,
                                                  .targets_include_context = true};
  fmt::print(
      "{} on GP regression: EQ kernel {}, noise 0.02, context 3..{}, "
      "batch {}, Adam 1e-4, {} meta-steps, {} thread(s)\n",
      cnp                  ? "CNP"
      : args.model == "np" ? "NP (deterministic + latent path)"
                           : "ANP (8-head cross-attention, latent path)",
      args.random_kernel ? "(length scale from [0.1, 0.6), signal from [0.1, 1.0) per task)"
                         : "(0.4, 1.0)",
      most, args.batch, args.steps, args.threads);
  return examples::with_neural_process(
      args, 1, [&](auto& learner) { return train(learner, args, protocol); });
}
