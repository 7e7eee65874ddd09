#pragma once
// What the example programs share: command-line parsing (CLI11), timing and a
// progress bar, Omniglot or the embedded glyphs as class datasets, and the sinusoid
// examples' baseline and evaluation table.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

namespace examples {

namespace ml = metalearn;
using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// Parses the command line into the options registered on `app`. --help prints the
/// usage and exits with 0; an unknown option or a bad or out-of-range value prints
/// what is wrong and exits with 2.
inline void parse_or_exit(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    std::exit(code == 0 ? 0 : 2);
  }
}

/// Checks that an option's value is a number of at least `lo`.
inline CLI::Validator at_least(long long lo) {
  return CLI::Validator(
      [lo](std::string& value) {
        char* end = nullptr;
        const double v = std::strtod(value.c_str(), &end);
        if (end == value.c_str() || *end != '\0') return "'" + value + "' is not a number";
        return v >= static_cast<double>(lo)
                   ? std::string()
                   : "must be at least " + std::to_string(lo) + ", got " + value;
      },
      ">=" + std::to_string(lo));
}

/// Checks that an option's value is a number greater than zero.
inline CLI::Validator positive() {
  return CLI::Validator(
      [](std::string& value) {
        char* end = nullptr;
        const double v = std::strtod(value.c_str(), &end);
        if (end == value.c_str() || *end != '\0') return "'" + value + "' is not a number";
        return v > 0.0 ? std::string() : "must be positive, got " + value;
      },
      ">0");
}

/// An option whose default --help shows, checked to be at least `lo`.
template <class V>
CLI::Option* add_at_least(CLI::App& app, const std::string& name, V& value, const std::string& help,
                          long long lo) {
  return app.add_option(name, value, help)->capture_default_str()->check(at_least(lo));
}

/// An option whose default --help shows, checked to be greater than zero.
template <class V>
CLI::Option* add_positive(CLI::App& app, const std::string& name, V& value,
                          const std::string& help) {
  return app.add_option(name, value, help)->capture_default_str()->check(positive());
}

/// --data DIR, falling back to METALEARN_OMNIGLOT_DIR (empty: the embedded glyphs).
/// Writes `text` to the results file `path` and says so; prints why not to stderr and
/// returns false when the file cannot be opened.
inline bool write_results(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    fmt::print(stderr, "cannot write {}\n", path);
    return false;
  }
  fmt::print(f, "{}", text);
  std::fclose(f);
  fmt::print("wrote {}\n", path);
  return true;
}

inline void add_data_option(CLI::App& app, std::string& data) {
  app.add_option("--data", data,
                 "Omniglot folder holding images_background/ and images_evaluation/ "
                 "(default: $METALEARN_OMNIGLOT_DIR, else the embedded procedural glyphs)")
      ->envname("METALEARN_OMNIGLOT_DIR");
}

/// The run folder of a long training run (train::fit's run_dir), how often it saves
/// the learner's state there, and whether it continues from it: --checkpoint DIR,
/// --checkpoint-every N, --resume.
struct CheckpointArgs {
  std::string dir;
  int every = 1000;
  bool resume = false;
};

/// --checkpoint DIR, --checkpoint-every N (in `unit`s of training) and --resume.
/// --checkpoint refuses an existing file: checkpoint files of earlier versions of the
/// examples continue when moved to DIR/checkpoint.safetensors.
inline void add_checkpoint_options(CLI::App& app, CheckpointArgs& c, const std::string& unit) {
  app.add_option("--checkpoint", c.dir,
                 "run folder: checkpoint.safetensors (the learner's whole state, with the run's "
                 "settings) and metrics.jsonl")
      ->check(CLI::Validator(
          [](std::string& value) {
            return std::filesystem::is_regular_file(value)
                       ? value +
                             " is a file; --checkpoint names a run folder (to continue from a "
                             "checkpoint file of an earlier version, move it to "
                             "FOLDER/checkpoint.safetensors)"
                       : std::string();
          },
          "DIR"));
  add_at_least(app, "--checkpoint-every", c.every, unit + " between checkpoints", 1);
  app.add_flag("--resume", c.resume, "continue from the checkpoint in --checkpoint when it exists")
      ->needs(app.get_option("--checkpoint"));
}

/// train::fit(learner, batches, options, eval), or the error on stderr and exit code 1 (a
/// checkpoint written with other settings, a run folder that cannot be written, a
/// training step that failed). Says where a resumed run continued and when the time
/// limit stopped the run, counting in `unit`s.
template <class L, class B>
ml::train::FitResult fit_or_exit(L& learner, B& batches, const ml::train::FitOptions& options,
                                 const std::string& unit,
                                 const ml::data::AnyTaskSampler<float>* eval = nullptr) {
  ml::train::FitResult result;
  try {
    result = ml::train::fit(learner, batches, options, eval);
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    std::exit(1);
  }
  if (result.start_step > 0) {
    fmt::print(
        "this run continued from {} {} of the checkpoint in {} ({:.0f} s of training before it)\n",
        unit, result.start_step, options.run_dir.string(), result.train_seconds - result.seconds);
  }
  if (result.out_of_time) {
    fmt::print("time limit reached after {} {}s; continue with --resume\n", result.steps, unit);
  }
  return result;
}

/// The Neural Process examples' shared flags: --model, --steps, --batch, --eval-every,
/// --threads, --out, --resume, --time-limit and --seed.
struct NeuralProcessArgs {
  std::string model = "cnp";
  int steps = 0, batch = 0, eval_every = 0, threads = 1;
  std::string out;
  bool resume = false;
  double time_limit = 0.0;  ///< minutes
  std::uint64_t seed = 1;

  /// The flags, showing the defaults the example set; `what` names a task ("tasks",
  /// "images").
  void add(CLI::App& app, const std::string& what) {
    app.add_option("--model", model, "cnp, np or anp")
        ->capture_default_str()
        ->check(CLI::IsMember({"cnp", "np", "anp"}));
    add_at_least(app, "--steps", steps, "meta-steps (batches)", 0);
    add_at_least(app, "--batch", batch, what + " per batch", 1);
    add_at_least(app, "--eval-every", eval_every, "meta-steps between evaluations", 1);
    add_at_least(app, "--threads", threads, "threads for the tasks of a batch", 1);
    app.add_option("--out", out, "run folder")->capture_default_str();
    app.add_flag("--resume", resume, "continue from the checkpoint in --out");
    app.add_option("--time-limit", time_limit, "minutes of training in this call (0: none)")
        ->capture_default_str();
    app.add_option("--seed", seed, "seed")->capture_default_str();
  }

  /// train::fit's options: an evaluation of `episodes` tasks and a checkpoint every
  /// --eval-every steps in --out; the run's settings (checked on resume) are the model,
  /// the batch and the seed, and `extra`.
  [[nodiscard]] ml::train::FitOptions fit_options(std::size_t episodes,
                                                  const ml::io::Metadata& extra = {}) const {
    ml::io::Metadata settings{
        {"model", model}, {"batch", std::to_string(batch)}, {"seed", std::to_string(seed)}};
    settings.insert(extra.begin(), extra.end());
    return ml::train::FitOptions{.steps = steps,
                                 .time_limit = 60.0 * time_limit,
                                 .eval_every = eval_every,
                                 .eval_episodes = episodes,
                                 .checkpoint_every = eval_every,
                                 .keep = {},
                                 .log_every = 100,
                                 .run_dir = out,
                                 .resume = resume,
                                 .settings = settings};
  }
};

/// Builds the --model of `args` (the CNP, the NP, or the ANP: the NP with 8-head
/// cross-attention; the library's reference sizes) for `x_dim` inputs and one output
/// and returns run(learner); an error on stderr and 1 when a step throws.
template <class F>
int with_neural_process(const NeuralProcessArgs& args, ml::Index x_dim, F&& run) {
  ml::Generator gen(args.seed);
  try {
    if (args.model == "cnp") {
      ml::algorithms::ConditionalNeuralProcess<float> learner(
          x_dim, 1, gen,
          ml::algorithms::CnpOptions{.threads = args.threads, .seed = args.seed + 7});
      return run(learner);
    }
    ml::algorithms::NpOptions options{.threads = args.threads, .seed = args.seed + 7};
    if (args.model == "anp") options.attention_heads = 8;
    ml::algorithms::NeuralProcess<float> learner(x_dim, 1, gen, options);
    return run(learner);
  } catch (const ml::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}

/// The Neural Process examples' training: train::fit(learner, batches, options, &eval)
/// through fit_or_exit(), with each evaluation printed beside the mean training loss since
/// the one before (`metric` names what the evaluation measures, `unit` what its episodes
/// are), then a line with the steps and their speed. `options` brings everything but on_step and
/// on_eval.
template <class L, class B>
ml::train::FitResult fit_with_evaluations(L& learner, B& batches,
                                          const ml::data::AnyTaskSampler<float>& eval,
                                          ml::train::FitOptions options, const std::string& metric,
                                          const std::string& unit) {
  double loss = 0.0;
  int window = 0;
  options.on_step = [&](std::int64_t, const ml::algorithms::StepStats& s) {
    loss += s.meta_loss;
    ++window;
  };
  options.on_eval = [&](std::int64_t step, const ml::algorithms::EvalResult& r) {
    fmt::print("step {:7}  train loss {:.4f} | {} {:.4f} +- {:.4f} ({} {})\n", step,
               loss / std::max(window, 1), metric, r.mean, r.ci95, r.episodes, unit);
    std::fflush(stdout);
    loss = 0.0;
    window = 0;
  };
  const ml::train::FitResult result = fit_or_exit(learner, batches, options, "meta-step", &eval);
  fmt::print(
      "steps {} -> {} in {:.0f} s ({:.1f} steps/s)\n", result.start_step, result.steps,
      result.seconds,
      static_cast<double>(result.steps - result.start_step) / std::max(1e-9, result.seconds));
  return result;
}

/// One plot of curves over a grid of x, with shaded bands and marked points, as an SVG.
struct SvgPlot {
  struct Curve {
    std::string name, color;
    std::vector<double> y;  ///< one value per x of the grid
    bool dashed = false;
  };
  struct Band {  ///< shaded between lower and upper, over the grid
    std::string color;
    std::vector<double> lower, upper;
  };
  struct Points {
    std::string name, color;
    std::vector<double> x, y;
    double radius = 4.0;
  };
  double x0 = -1, x1 = 1, y0 = -1, y1 = 1;  ///< the axes' ranges
  std::vector<double> grid;
  std::vector<Band> bands;
  std::vector<Curve> curves;
  std::vector<Points> points;
};

/// Writes `plot` to `path` (720 x 420, a legend at the top left); false, with the
/// reason on stderr, when the file cannot be written.
inline bool write_svg(const std::string& path, const SvgPlot& plot) {
  const double w = 720, h = 420, pad = 50;
  const auto sx = [&](double x) {
    return pad + (x - plot.x0) / (plot.x1 - plot.x0) * (w - 2 * pad);
  };
  const auto sy = [&](double y) {
    const double c = std::clamp(y, plot.y0, plot.y1);
    return h - pad - (c - plot.y0) / (plot.y1 - plot.y0) * (h - 2 * pad);
  };
  fmt::memory_buffer svg;
  const auto out = std::back_inserter(svg);
  fmt::format_to(out,
                 "<svg xmlns='http://www.w3.org/2000/svg' width='{:g}' height='{:g}'>\n"
                 "<rect width='100%' height='100%' fill='white'/>\n"
                 "<line x1='{:g}' y1='{:g}' x2='{:g}' y2='{:g}' stroke='#bbb'/>\n"
                 "<line x1='{:g}' y1='{:g}' x2='{:g}' y2='{:g}' stroke='#bbb'/>\n",
                 w, h, sx(plot.x0), sy(0), sx(plot.x1), sy(0), sx(0), sy(plot.y0), sx(0),
                 sy(plot.y1));
  for (const auto& b : plot.bands) {
    fmt::format_to(out, "<polygon fill='{}' fill-opacity='0.25' stroke='none' points='", b.color);
    for (std::size_t i = 0; i < plot.grid.size(); ++i) {
      fmt::format_to(out, "{:g},{:g} ", sx(plot.grid[i]), sy(b.upper[i]));
    }
    for (std::size_t i = plot.grid.size(); i-- > 0;) {
      fmt::format_to(out, "{:g},{:g} ", sx(plot.grid[i]), sy(b.lower[i]));
    }
    fmt::format_to(out, "'/>\n");
  }
  double line = 0;
  const auto legend = [&](const std::string& color, const std::string& name) {
    if (name.empty()) return;
    fmt::format_to(out,
                   "<text x='{:g}' y='{:g}' fill='{}' font-family='sans-serif' "
                   "font-size='14'>{}</text>\n",
                   pad + 10, pad + 18 * line, color, name);
    line += 1;
  };
  for (const auto& c : plot.curves) {
    fmt::format_to(out, "<polyline fill='none' stroke='{}' stroke-width='2'{} points='", c.color,
                   c.dashed ? " stroke-dasharray='6 4'" : "");
    for (std::size_t i = 0; i < plot.grid.size(); ++i) {
      fmt::format_to(out, "{:g},{:g} ", sx(plot.grid[i]), sy(c.y[i]));
    }
    fmt::format_to(out, "'/>\n");
    legend(c.color, c.name);
  }
  for (const auto& p : plot.points) {
    for (std::size_t i = 0; i < p.x.size(); ++i) {
      fmt::format_to(out, "<circle cx='{:g}' cy='{:g}' r='{:g}' fill='{}'/>\n", sx(p.x[i]),
                     sy(p.y[i]), p.radius, p.color);
    }
    legend(p.color, p.name);
  }
  fmt::format_to(out, "</svg>\n");
  std::ofstream file(path);
  file.write(svg.data(), static_cast<std::streamsize>(svg.size()));
  if (!file) {
    fmt::print(stderr, "error: cannot write {}\n", path);
    return false;
  }
  return true;
}

/// --threads (of the per-task loop), --seed, --out and --quiet, as the sinusoid
/// examples take them.
inline void add_run_options(CLI::App& app, int& threads, std::uint64_t& seed, std::string& out,
                            bool& quiet) {
  add_at_least(app, "--threads", threads, "threads of the per-task loop", 1);
  app.add_option("--seed", seed, "seed of the initialisation and the tasks")->capture_default_str();
  app.add_option("--out", out, "output folder")->capture_default_str();
  app.add_flag("--quiet", quiet, "no progress bar");
}

/// A one-line progress bar on stderr (nothing when `quiet`).
inline void progress(int step, int total, const char* what, double value, double seconds,
                     bool quiet) {
  if (quiet) return;
  const int width = 30;
  const int filled = std::clamp(total > 0 ? width * step / total : width, 0, width);
  fmt::print(stderr, "\r[{:<{}}] {:3}%  step {}/{}  {} {:.3f}  {:.0f} steps/s ",
             std::string(static_cast<std::size_t>(filled), '#'), width,
             total > 0 ? 100 * step / total : 100, step, total, what, value,
             seconds > 0 ? step / seconds : 0.0);
  if (step == total) fmt::print(stderr, "\n");
}

/// Training and test classes of a few-shot image example.
struct ClassData {
  std::shared_ptr<const ml::data::ClassDataset> train, test;
  bool omniglot = false;
};

/// Omniglot under `root` in the Vinyals split (the 1200 training characters with
/// their four rotations; the 423 test characters, rotated too when
/// `test_rotations`), or the embedded procedural glyphs when `root` is empty. Says
/// what it loads on stdout. @throws metalearn::Error (IoError naming the file).
inline ClassData load_class_data(const std::string& root, bool test_rotations) {
  const auto t0 = Clock::now();
  ClassData d;
  d.omniglot = !root.empty();
  if (d.omniglot) {
    fmt::print("loading Omniglot from {} ...\n", root);
    std::fflush(stdout);
    ml::data::OmniglotDataset all({.root = root, .split = ml::data::OmniglotSplit::kAll});
    d.train = std::make_shared<ml::data::OmniglotDataset>(
        all.with_split(ml::data::OmniglotSplit::kVinyalsTrain, true));
    d.test = std::make_shared<ml::data::OmniglotDataset>(
        all.with_split(ml::data::OmniglotSplit::kVinyalsTest, test_rotations));
  } else {
    fmt::print("no --data and no METALEARN_OMNIGLOT_DIR: using the embedded procedural glyphs\n");
    d.train = std::make_shared<ml::data::ProceduralGlyphs>(
        ml::data::ProceduralGlyphsOptions{.split = ml::data::Split::kTrain});
    d.test = std::make_shared<ml::data::ProceduralGlyphs>(
        ml::data::ProceduralGlyphsOptions{.split = ml::data::Split::kTest});
  }
  fmt::print("{}: {} training classes, {} test classes ({:.1f} s)\n", d.train->name(),
             d.train->num_classes(), d.test->num_classes(), seconds_since(t0));
  return d;
}

/// load_class_data(), or the error on stderr and exit code 1.
inline ClassData load_class_data_or_exit(const std::string& root, bool test_rotations) {
  try {
    return load_class_data(root, test_rotations);
  } catch (const ml::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    std::exit(1);
  }
}

/// The sinusoid examples' baseline: `net` trained by plain regression (Adam 1e-3) on
/// the support and query points of the same meta-batches the meta-learner saw.
inline void pretrain_on_tasks(ml::nn::Module<float>& net,
                              const ml::data::SinusoidTasks<float>& family, ml::Index batch,
                              std::uint64_t seed, int steps) {
  ml::optim::Adam<float> opt(net.parameters(), ml::optim::AdamOptions{.lr = 1e-3});
  ml::data::MetaBatchSampler<float> same(family, {.batch = batch, .seed = seed});
  for (int step = 1; step <= steps; ++step) {
    std::vector<ml::Tensor<float>> xs, ys;
    for (const auto& t : same.next()) {
      xs.push_back(t.support_x);
      xs.push_back(t.query_x);
      ys.push_back(t.support_y);
      ys.push_back(t.query_y);
    }
    auto loss = ml::mse_loss(net.forward(ml::concat(xs, 0)), ml::concat(ys, 0));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
}

/// One row group of the sinusoid table: a learner's evaluate(sampler, episodes, steps).
struct SinusoidLearner {
  std::string name;      ///< as printed
  std::string csv_name;  ///< as written to the CSV
  std::function<ml::algorithms::EvalResult(const ml::data::AnyTaskSampler<float>&, std::size_t,
                                           int)>
      evaluate;
};

/// The query MSE of 1,000 unseen sinusoid tasks (100 query points) after 0, 1 and 10
/// steps, for K = 5 and K = 10, printed and written to `csv_path`. Returns each
/// learner's K = 10 value after `report_steps` steps; throws IoError when the CSV
/// cannot be written.
inline std::vector<double> sinusoid_table(const std::vector<SinusoidLearner>& learners,
                                          const std::string& csv_path, int report_steps) {
  const std::size_t episodes = 1000;
  std::FILE* csv = std::fopen(csv_path.c_str(), "w");
  if (csv == nullptr) throw ml::IoError("cannot write " + csv_path);
  fmt::print(csv, "method,shots,steps,mse,ci95\n");
  fmt::print("\nQuery MSE on {} unseen tasks (100 query points each), mean +- 95% CI\n", episodes);
  fmt::print("{:<22} {:<3} {:>18} {:>18} {:>18}\n", "method", "K", "0 steps", "1 step", "10 steps");
  std::vector<double> reported(learners.size(), 0.0);
  for (const ml::Index shots : {ml::Index{5}, ml::Index{10}}) {
    ml::data::SinusoidTasks<float> test_family({.shots = shots, .queries = 100});
    for (std::size_t m = 0; m < learners.size(); ++m) {
      fmt::print("{:<22} {:<3}", learners[m].name, shots);
      for (const int steps : {0, 1, 10}) {
        const auto r = learners[m].evaluate(test_family, episodes, steps);
        fmt::print(" {:>10.3f} +- {:>5.3f}", r.mean, r.ci95);
        fmt::print(csv, "{},{},{},{:.6f},{:.6f}\n", learners[m].csv_name, shots, steps, r.mean,
                   r.ci95);
        if (shots == 10 && steps == report_steps) reported[m] = r.mean;
      }
      fmt::print("\n");
    }
  }
  std::fclose(csv);
  return reported;
}

}  // namespace examples
