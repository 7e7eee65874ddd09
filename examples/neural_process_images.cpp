// Neural Processes on image completion (Garnelo et al. 2018; Kim et al. 2019): each task
// is one 28 x 28 character (Omniglot's background alphabets, or the embedded glyphs'
// training classes), a regression from pixel coordinates (row, column in [-1, 1]) to
// intensity, with 3..--max-context random pixels as its context and every pixel as its
// targets (the context included); batches of 16, Adam 1e-4, the reference network sizes.
//
// Usage: neural_process_images [--model cnp|np|anp] [--data DIR] [--steps 20000]
//          [--batch 16] [--max-context 200] [--eval-every 5000] [--eval-images 300]
//          [--threads 1] [--out DIR] [--resume] [--time-limit MIN] [--seed 1]
//
// Trains with train::fit (DIR/checkpoint.safetensors, continue with --resume;
// DIR/metrics.jsonl), the evaluation being the mean per-pixel log-likelihood over the
// test characters (Omniglot's evaluation alphabets, or the glyphs' test classes). At the
// end, on --eval-images test characters with 10, 100 and 500 random context pixels, the
// protocol of the image-completion results: the mean squared error of the predictive mean
// (for the NP and ANP, z at its prior mean) over the pixels outside the context, with its
// 95% interval over the images, beside two baselines on the same images and pixels:
// k-nearest-neighbour averaging and a Gaussian process's posterior mean (EQ kernel), each
// with its settings chosen per context size on training characters. Writes
// DIR/completions.png (rows: test characters; per context size: the context, unseen
// pixels grey, the mean, the standard deviation; last column: the character) and
// DIR/completion.json.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <metalearn/metalearn.hpp>
#include <string>
#include <utility>
#include <vector>

#include "example_support.hpp"

namespace ml = metalearn;
namespace alg = metalearn::algorithms;
namespace md = metalearn::data;

namespace {

struct Args : examples::NeuralProcessArgs {
  std::string data;
  ml::Index max_context = 200;
  std::size_t eval_images = 300;
};

Args parse(int argc, char** argv) {
  Args a;
  a.steps = 20000;
  a.batch = 16;
  a.eval_every = 5000;
  a.out = "neural_process_images_out";
  CLI::App app("Neural Processes on image completion", "neural_process_images");
  a.add(app, "images");
  examples::add_data_option(app, a.data);
  examples::add_at_least(app, "--max-context", a.max_context, "most context pixels in training", 3);
  examples::add_at_least(app, "--eval-images", a.eval_images,
                         "test characters of each evaluation and of the completion table", 1);
  examples::parse_or_exit(app, argc, argv);
  return a;
}

constexpr ml::Index kContextSizes[] = {10, 100, 500};
constexpr ml::Index kNeighbours[] = {1, 3, 5, 9, 15};
struct GpSetting {
  double length, signal, noise;
};

// The image of task `j` of the completion table: the same character for every context
// size (the character is drawn first from the task's generator).
ml::Generator table_generator(std::uint64_t seed, std::size_t j) {
  return md::task_generator(seed, ml::Split::kTest, j);
}

// Mean squared error over the query set of kNN and GP predictions with each setting, on
// `n` training characters with `context` pixels: the best setting of each.
std::pair<ml::Index, GpSetting> choose_baselines(const md::ImageCompletionTasks<float>& train,
                                                 ml::Index context, std::uint64_t seed) {
  const md::ImageCompletionTasks<float> fixed(
      train.images(),
      {.min_context = context, .max_context = context, .targets_include_context = false});
  std::vector<md::Task<float>> tasks;
  for (std::size_t j = 0; j < 40; ++j) {
    ml::Generator g = md::task_generator(seed, ml::Split::kTrain, j);
    tasks.push_back(fixed.sample(g));
  }
  double best_knn = std::numeric_limits<double>::infinity();
  ml::Index k_best = 1;
  for (const ml::Index k : kNeighbours) {
    double sum = 0.0;
    for (const auto& t : tasks) sum += alg::mean_squared_error(t, alg::knn_regression(t, k));
    if (sum < best_knn) {
      best_knn = sum;
      k_best = k;
    }
  }
  double best_gp = std::numeric_limits<double>::infinity();
  GpSetting gp_best{0.1, 0.5, 0.1};
  for (const double length : {0.05, 0.08, 0.12, 0.2}) {  // a pixel is 2 / 27 = 0.074
    for (const double signal : {0.3, 0.6}) {
      for (const double noise : {0.05, 0.15, 0.3}) {
        double sum = 0.0;
        for (const auto& t : tasks) {
          sum += alg::mean_squared_error(t, alg::gp_regression_mean(t, length, signal, noise));
        }
        if (sum < best_gp) {
          best_gp = sum;
          gp_best = {length, signal, noise};
        }
      }
    }
  }
  return {k_best, gp_best};
}

std::uint8_t grey(double v) {
  return static_cast<std::uint8_t>(std::clamp(std::lround(255.0 * v), 0L, 255L));
}

template <class L>
int run(L& learner, const Args& args, const examples::ClassData& data) {
  const md::ImageCompletionTasks<float> train(data.train, {.max_context = args.max_context});
  const md::ImageCompletionTasks<float> test(data.test, {.max_context = args.max_context});
  md::MetaBatchSampler<float> batches(train, {.batch = args.batch, .seed = args.seed});
  const md::AnyTaskSampler<float> test_tasks(test);
  const ml::train::FitOptions options =
      args.fit_options(args.eval_images, {{"max_context", std::to_string(args.max_context)},
                                          {"data", data.omniglot ? "omniglot" : "glyphs"}});
  const ml::train::FitResult result = examples::fit_with_evaluations(
      learner, batches, test_tasks, options, "log-likelihood per pixel", "test characters");
  if (result.steps < args.steps) return 0;

  // The completion table: the model and both baselines on the same characters and pixels.
  std::string table;  // completion.json's rows
  fmt::print("\npixel MSE over the pixels outside the context ({} test characters, 95% interval)\n",
             args.eval_images);
  fmt::print("{:>8} | {:>17} | {:>17} | {:>17}\n", "context", args.model, "k-NN", "GP mean");
  const ml::Index h = test.height(), w = test.width();
  constexpr int kRows = 4, kScale = 3, kGap = 2;
  const ml::Index panels = 3 * std::ssize(kContextSizes) + 1;
  md::GrayImage figure;
  figure.width = panels * (w * kScale + kGap);
  figure.height = kRows * (h * kScale + kGap);
  figure.pixels.assign(static_cast<std::size_t>(figure.width * figure.height), 255);
  const auto put = [&](int row, ml::Index panel, ml::Index pixel, double v) {
    const ml::Index r0 = row * (h * kScale + kGap) + (pixel / w) * kScale;
    const ml::Index c0 = panel * (w * kScale + kGap) + (pixel % w) * kScale;
    for (int dr = 0; dr < kScale; ++dr) {
      for (int dc = 0; dc < kScale; ++dc) {
        figure.pixels[static_cast<std::size_t>((r0 + dr) * figure.width + c0 + dc)] = grey(v);
      }
    }
  };
  for (std::size_t ci = 0; ci < std::size(kContextSizes); ++ci) {
    const ml::Index context = kContextSizes[ci];
    const auto [k, gp] = choose_baselines(train, context, args.seed + 11);
    const md::ImageCompletionTasks<float> fixed(
        data.test,
        {.min_context = context, .max_context = context, .targets_include_context = false});
    std::vector<double> model(args.eval_images), knn(args.eval_images), mean(args.eval_images);
    for (std::size_t j = 0; j < args.eval_images; ++j) {
      ml::Generator g = table_generator(args.seed + 17, j);
      const md::Task<float> task = fixed.sample(g);
      ml::Tensor<float> p;
      {
        ml::autograd::NoGradGuard no_grad;
        p = learner.predict(learner.adapt(task), task.query_x);  // [m, 2]: mean, sigma
      }
      const ml::Index m = task.query_x.shape()[0];
      ml::Tensor<float> mu = ml::Tensor<float>::empty(ml::Shape{m, 1});
      for (ml::Index q = 0; q < m; ++q) mu.data()[q] = p.data()[2 * q];
      model[j] = alg::mean_squared_error(task, mu);
      knn[j] = alg::mean_squared_error(task, alg::knn_regression(task, k));
      mean[j] = alg::mean_squared_error(
          task, alg::gp_regression_mean(task, gp.length, gp.signal, gp.noise));
      if (j < static_cast<std::size_t>(kRows)) {
        const int row = static_cast<int>(j);
        const auto panel = static_cast<ml::Index>(3 * ci);
        for (ml::Index q = 0; q < h * w; ++q) put(row, panel, q, 0.5);  // unseen: grey
        for (ml::Index s = 0; s < task.shots; ++s) {
          const ml::Index px =
              fixed.pixel_of(task.support_x.data()[2 * s], task.support_x.data()[2 * s + 1]);
          put(row, panel, px, 1.0 - task.support_y.data()[s]);  // ink dark on white
          put(row, panel + 1, px, 1.0 - task.support_y.data()[s]);
          put(row, panel + 2, px, 1.0);
        }
        for (ml::Index q = 0; q < m; ++q) {
          const ml::Index px =
              fixed.pixel_of(task.query_x.data()[2 * q], task.query_x.data()[2 * q + 1]);
          put(row, panel + 1, px, 1.0 - p.data()[2 * q]);
          put(row, panel + 2, px, 1.0 - std::min(1.0F, 2.0F * p.data()[2 * q + 1]));
          if (ci == 0) put(row, panels - 1, px, 1.0 - task.query_y.data()[q]);
        }
        if (ci == 0) {
          for (ml::Index s = 0; s < task.shots; ++s) {
            const ml::Index px =
                fixed.pixel_of(task.support_x.data()[2 * s], task.support_x.data()[2 * s + 1]);
            put(row, panels - 1, px, 1.0 - task.support_y.data()[s]);
          }
        }
      }
    }
    const auto rm = alg::EvalResult::from_values(std::move(model));
    const auto rk = alg::EvalResult::from_values(std::move(knn));
    const auto rg = alg::EvalResult::from_values(std::move(mean));
    fmt::print(
        "{:>8} | {:.4f} +- {:.4f} | {:.4f} +- {:.4f} | {:.4f} +- {:.4f}   (k = {}; GP l = "
        "{}, s = {}, noise = {})\n",
        context, rm.mean, rm.ci95, rk.mean, rk.ci95, rg.mean, rg.ci95, k, gp.length, gp.signal,
        gp.noise);
    table += fmt::format(
        "{}    {{\"context\": {}, \"model\": {{\"mean\": {}, \"ci95\": {}}}, "
        "\"knn\": {{\"mean\": {}, \"ci95\": {}, \"k\": {}}}, \"gp\": {{\"mean\": {}, "
        "\"ci95\": {}, \"length_scale\": {}, \"signal_scale\": {}, \"noise_std\": {}}}}}",
        table.empty() ? "" : ",\n", context, rm.mean, rm.ci95, rk.mean, rk.ci95, k, rg.mean,
        rg.ci95, gp.length, gp.signal, gp.noise);
  }
  const std::filesystem::path out(args.out);
  md::write_png_gray(out / "completions.png", figure);
  const std::string record = fmt::format(
      "{{\n  \"model\": \"{}\",\n  \"steps\": {},\n  \"test_characters\": {},\n"
      "  \"data\": \"{}\",\n  \"mse_outside_context\": [\n{}\n  ]\n}}\n",
      args.model, result.steps, args.eval_images, data.omniglot ? "omniglot" : "glyphs", table);
  examples::write_results((out / "completion.json").string(), record);
  fmt::print("wrote {} and {}\n", (out / "completions.png").string(),
             (out / "completion.json").string());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  const examples::ClassData data = examples::load_class_data_or_exit(args.data, false);
  fmt::print(
      "{} on image completion: 3..{} context pixels, batch {}, Adam 1e-4, {} meta-steps, "
      "{} thread(s)\n",
      args.model, args.max_context, args.batch, args.steps, args.threads);
  return examples::with_neural_process(args, 2,
                                       [&](auto& learner) { return run(learner, args, data); });
}
