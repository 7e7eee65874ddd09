#include "src/cli/run.hpp"

#include "src/cli/files.hpp"
#include "src/cli/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <memory>
#include <metalearn/data.hpp>
#include <metalearn/io.hpp>
#include <metalearn/nn.hpp>
#include <metalearn/train.hpp>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#if defined(METALEARN_CLI_WITH_MPI)
#include <metalearn/distributed.hpp>
#endif

namespace metalearn::cli {

namespace {

namespace fs = std::filesystem;

constexpr const char* kConfigFormat = "metalearn.run";
constexpr int kConfigVersion = 1;

/// The options of a config's algorithm, as its table reads them.
template <class O>
O options_of(const RunConfig& c, const FieldTable<O>& table, const std::string& file) {
  O o{};
  table.from_json(c.options, o, file);
  return o;
}

bool classification(const RunConfig& c) {
  return c.tasks == "omniglot" || c.tasks == "glyphs";
}

/// Whether the run's tasks are environments (RL^2 on bandits or MDPs).
bool environment(const RunConfig& c) {
  return c.tasks == "bandits" || c.tasks == "mdps";
}

/// The table of the run's task settings: an environment run has only the seed.
const FieldTable<TaskSettings>& task_table_of(const RunConfig& c) {
  return environment(c) ? environment_task_table() : task_table();
}

Json read_json(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  METALEARN_CHECK(f.good(), IoError, "metalearn: cannot read ", path.string());
  try {
    return Json::parse(f);
  } catch (const Json::parse_error& e) {
    throw IoError("metalearn: " + path.string() + " is not valid JSON: " + e.what());
  }
}

/// The class datasets of a classification run: Omniglot in the Vinyals split (the
/// training characters with their rotations, the test characters without), or the
/// embedded procedural glyphs.
struct Classes {
  std::shared_ptr<const data::ClassDataset> train, test;
};

Classes load_classes(const RunConfig& c, std::ostream& out) {
  Classes d;
  if (c.tasks == "omniglot" || (c.tasks == "images" && !c.task.data.empty())) {
    std::string root = c.task.data;
    if (root.empty()) {
      const char* env = std::getenv("METALEARN_OMNIGLOT_DIR");  // NOLINT(concurrency-mt-unsafe)
      root = env != nullptr ? env : "";
    }
    METALEARN_CHECK(!root.empty(), ValueError,
                    "metalearn: --tasks omniglot needs --data DIR or METALEARN_OMNIGLOT_DIR "
                    "(or use --tasks glyphs, the embedded procedural glyphs)");
    out << "loading Omniglot from " << root << " ...\n" << std::flush;
    data::OmniglotDataset all({.root = root, .split = data::OmniglotSplit::kAll});
    d.train = std::make_shared<data::OmniglotDataset>(
        all.with_split(data::OmniglotSplit::kVinyalsTrain, true));
    d.test = std::make_shared<data::OmniglotDataset>(
        all.with_split(data::OmniglotSplit::kVinyalsTest, false));
  } else {
    if (c.tasks == "images")
      out << "images: the embedded procedural glyphs (--data DIR: Omniglot)\n";
    d.train = std::make_shared<data::ProceduralGlyphs>(
        data::ProceduralGlyphsOptions{.split = Split::kTrain});
    d.test = std::make_shared<data::ProceduralGlyphs>(
        data::ProceduralGlyphsOptions{.split = Split::kTest});
  }
  return d;
}

/// Builds c's MAML or Reptile learner on `model` and calls f(learner).
template <class F>
auto with_gradient_learner(const RunConfig& c, nn::Module<float>& model, std::uint64_t seed,
                           F&& f) {
  if (c.algorithm == "maml") {
    auto o = options_of(c, maml_table(), "config.json");
    o.seed = seed;
    algorithms::Maml<float> learner(model, o);
    return f(learner);
  }
  auto o = options_of(c, reptile_table(), "config.json");
  o.seed = seed;
  o.meta_batch = c.task.meta_batch;
  algorithms::Reptile<float> learner(model, o);
  return f(learner);
}

/// Builds the model, the learner and the samplers of `c` and calls
/// f(learner, training batches, test tasks, model).
template <class F>
auto with_learner(const RunConfig& c, std::ostream& out, F&& f) {
  const std::string file = "config.json";
  const TaskSettings& t = c.task;
  const Index queries = t.queries.value_or(t.shots);
  const Index eval_ways = t.eval_ways.value_or(t.ways);
  const Index eval_shots = t.eval_shots.value_or(t.shots);
  Generator gen(t.seed);
  const std::uint64_t learner_seed = t.seed + 1000;
  const data::MetaBatchOptions batch_options{
      .batch = t.meta_batch, .seed = t.seed, .prefetch = classification(c) ? 2 : 0};
  // A Neural Process on a regression family from x_dim inputs to one output.
  const auto neural_process = [&](Index x_dim, auto& batches, const auto& test_tasks) {
    const nn::Module<float>* none = nullptr;
    if (c.algorithm == "cnp") {
      auto o = options_of(c, cnp_table(), file);
      o.seed = learner_seed;
      algorithms::ConditionalNeuralProcess<float> learner(x_dim, 1, gen, o);
      return f(learner, batches, test_tasks, none);
    }
    auto o = options_of(c, np_table(), file);
    o.seed = learner_seed;
    algorithms::NeuralProcess<float> learner(x_dim, 1, gen, o);
    return f(learner, batches, test_tasks, none);
  };
  if (c.tasks == "gp") {
    data::GaussianProcessTasks<float> family(c.gp);
    data::MetaBatchSampler<float> batches(family, batch_options);
    const data::AnyTaskSampler<float> test_tasks(family);
    return neural_process(1, batches, test_tasks);
  }
  if (c.tasks == "images") {
    // Pixel (row, column) in [-1, 1]^2 -> intensity, on the training characters; the
    // evaluation on the test characters.
    const Classes classes = load_classes(c, out);
    data::ImageCompletionTasks<float> family(classes.train, c.images);
    const data::ImageCompletionTasks<float> test(classes.test, c.images);
    data::MetaBatchSampler<float> batches(family, batch_options);
    const data::AnyTaskSampler<float> test_tasks(test);
    return neural_process(2, batches, test_tasks);
  }
  if (c.tasks == "sinusoid") {
    data::SinusoidTasks<float> family({.shots = t.shots, .queries = queries});
    data::SinusoidTasks<float> test({.shots = eval_shots, .queries = t.eval_queries});
    data::MetaBatchSampler<float> batches(family, batch_options);
    const data::AnyTaskSampler<float> test_tasks(test);
    nn::MLP<float> model({1, 40, 40, 1}, gen);
    return with_gradient_learner(c, model, learner_seed, [&](auto& learner) {
      return f(learner, batches, test_tasks, static_cast<const nn::Module<float>*>(&model));
    });
  }
  const Classes classes = load_classes(c, out);
  data::EpisodicSampler<float> train(classes.train,
                                     {.ways = t.ways, .shots = t.shots, .queries = queries});
  data::EpisodicSampler<float> test(
      classes.test, {.ways = eval_ways, .shots = eval_shots, .queries = t.eval_queries});
  data::MetaBatchSampler<float> batches(train, batch_options);
  const data::AnyTaskSampler<float> test_tasks(test);
  const Shape example = classes.train->example_shape();
  const nn::ConvNet4Options net{
      .in_channels = example[0], .image_size = example[1], .ways = t.ways};
  if (c.algorithm == "maml" || c.algorithm == "reptile") {
    METALEARN_CHECK(eval_ways == t.ways, ValueError, "metalearn: ", c.algorithm,
                    " classifies with a head of `ways` outputs, so eval_ways (", eval_ways,
                    ") must equal ways (", t.ways, ")");
    nn::ConvNet4<float> model(net, gen);
    return with_gradient_learner(c, model, learner_seed, [&](auto& learner) {
      return f(learner, batches, test_tasks, static_cast<const nn::Module<float>*>(&model));
    });
  }
  if (c.algorithm == "protonet") {
    auto o = options_of(c, protonet_table(), file);
    o.seed = learner_seed;
    o.embedding.in_channels = example[0];
    o.embedding.image_size = example[1];
    algorithms::ProtoNet<float> learner(gen, o);
    return f(learner, batches, test_tasks, static_cast<const nn::Module<float>*>(&learner.model()));
  }
  auto o = options_of(c, matching_table(), file);
  o.seed = learner_seed;
  o.embedding.in_channels = example[0];
  o.embedding.image_size = example[1];
  algorithms::MatchingNet<float> learner(gen, o);
  return f(learner, batches, test_tasks, static_cast<const nn::Module<float>*>(&learner.model()));
}

/// Builds the RL^2 learner of an environment run and calls f(learner). Like the
/// rl2_bandits and rl2_mdps examples, the seed sets both the initial weights and the
/// environment streams, so the same settings train the same bits.
template <class F>
auto with_environment_learner(const RunConfig& c, F&& f) {
  auto o = options_of(c, rl2_table(), "config.json");
  o.seed = c.task.seed;
  Generator gen(c.task.seed);
  if (c.tasks == "bandits") {
    algorithms::Rl2<env::BernoulliBandits> learner(env::BernoulliBandits(c.bandits), gen, o);
    return f(learner);
  }
  algorithms::Rl2<env::TabularMdps> learner(env::TabularMdps(c.mdp), gen, o);
  return f(learner);
}

/// One test task of a regression run, for the report: the true function and the
/// model's predictions on a grid before and after adapting to the task's support set.
template <class L>
Json sinusoid_figure(const RunConfig& c, const L& learner, const nn::Module<float>& model) {
  const Index eval_shots = c.task.eval_shots.value_or(c.task.shots);
  data::SinusoidTasks<float> family({.shots = eval_shots, .queries = 1});
  Generator gen(c.task.seed + 2000);
  const data::Task<float> task = family.sample(gen);
  std::vector<float> grid;
  for (int i = 0; i <= 100; ++i) grid.push_back(-5.0f + 0.1f * static_cast<float>(i));
  const Tensor<float> x = from_vector<float>(grid, Shape{101, 1});
  Tensor<float> before;
  {
    autograd::NoGradGuard no_grad;
    before = model.forward(x);
  }
  const Tensor<float> after = learner.predict(learner.adapt(task), x);
  const double amplitude = task.param("amplitude");
  const double phase = task.param("phase");
  Json fig{{"x", grid},
           {"truth", Json::array()},
           {"before", before.to_vector()},
           {"after", after.to_vector()},
           {"support_x", task.support_x.to_vector()},
           {"support_y", task.support_y.to_vector()}};
  for (const float xi : grid) {
    fig["truth"].push_back(
        data::SinusoidTasks<float>::value(amplitude, phase, static_cast<double>(xi)));
  }
  return fig;
}

/// One test task of a Gaussian-process run, for the report: its context and target
/// points and the predictive mean and standard deviation (for the NP, at z's prior
/// mean) on a grid across the inputs' range, beside the exact GP's given the same
/// context.
template <class L>
Json gp_figure(const RunConfig& c, const L& learner) {
  data::GaussianProcessTasks<float> family(c.gp);
  Generator gen(c.task.seed + 2000);
  const data::Task<float> task = family.sample(gen);
  std::vector<float> grid;
  for (int i = 0; i <= 100; ++i) {
    grid.push_back(static_cast<float>(c.gp.x_min + (c.gp.x_max - c.gp.x_min) * i / 100.0));
  }
  const Tensor<float> x = from_vector<float>(grid, Shape{101, 1});
  const Tensor<float> p = learner.predict(learner.adapt(task), x);
  METALEARN_CHECK(p.dim() == 2 && p.shape()[0] == 101 && p.shape()[1] == 2, ShapeError,
                  "metalearn: the predictive figure expects mean and sigma [101, 2], got ",
                  p.shape());
  Json fig{{"x", grid},
           {"mean", Json::array()},
           {"sigma", Json::array()},
           {"support_x", task.support_x.to_vector()},
           {"support_y", task.support_y.to_vector()},
           {"query_x", task.query_x.to_vector()},
           {"query_y", task.query_y.to_vector()}};
  for (Index i = 0; i < 101; ++i) {
    fig["mean"].push_back(p.data()[2 * i]);
    fig["sigma"].push_back(p.data()[2 * i + 1]);
  }
  // The exact GP's predictive given the same context: what the model approximates.
  const auto exact = family.oracle_predictive(task, std::vector<double>(grid.begin(), grid.end()));
  fig["gp_mean"] = exact.mean;
  for (const double v : exact.variance) fig["gp_sigma"].push_back(std::sqrt(v));
  return fig;
}

/// What an RL^2 agent learns within a trial, for the report, over the first 200 test
/// environments: on bandits the mean cumulative regret after each pull (the best arm's
/// mean less the pulled arm's, summed), on MDPs the mean return of each episode.
template <class L>
Json trial_figure(const RunConfig& c, const L& learner) {
  constexpr Index kTrials = 200;
  const algorithms::TrialBatch b =
      learner.collect(learner.family(), c.task.seed, env::Split::kTest, 0, kTrials);
  const Index steps = b.steps();
  std::vector<double> curve;
  if constexpr (std::is_same_v<typename L::family_type, env::BernoulliBandits>) {
    curve.assign(static_cast<std::size_t>(steps), 0.0);
    for (Index m = 0; m < kTrials; ++m) {
      const env::BernoulliBandit bandit =
          learner.family().make(c.task.seed, env::Split::kTest, static_cast<std::uint64_t>(m));
      double regret = 0.0;
      for (Index t = 0; t < steps; ++t) {
        const auto arm = static_cast<std::size_t>(b.actions[b.at(m, t)]);
        regret += bandit.best_mean() - bandit.probabilities()[arm];
        curve[static_cast<std::size_t>(t)] += regret / static_cast<double>(kTrials);
      }
    }
    return Json{{"kind", "regret"}, {"trials", kTrials}, {"regret", curve}};
  } else {
    const Index horizon = b.spec.horizon;
    curve.assign(static_cast<std::size_t>(b.spec.episodes), 0.0);
    for (Index m = 0; m < kTrials; ++m) {
      for (Index t = 0; t < steps; ++t) {
        curve[static_cast<std::size_t>(t / horizon)] +=
            b.rewards[b.at(m, t)] / static_cast<double>(kTrials);
      }
    }
    return Json{{"kind", "episode_return"}, {"trials", kTrials}, {"episode_return", curve}};
  }
}

/// For a Gaussian-process run whose targets include the context, the model's
/// log-likelihood per point on the context points and on the further targets alone (the
/// ANP paper's two numbers), and the exact GP's on the same `episodes` test tasks (all
/// targets, context, further targets): the oracle bound of each. Null for other runs.
template <class L>
Json gp_parts(const RunConfig& c, const L& learner, const data::AnyTaskSampler<float>& tasks,
              std::size_t episodes) {
  constexpr bool neural_process = std::is_same_v<L, algorithms::ConditionalNeuralProcess<float>> ||
                                  std::is_same_v<L, algorithms::NeuralProcess<float>>;
  if constexpr (neural_process) {
    if (c.tasks != "gp" || !c.gp.targets_include_context || episodes == 0) return Json();
    const data::GaussianProcessTasks<float> family(c.gp);
    Json j = Json::object();
    const std::pair<const char*, data::QueryPart> parts[] = {
        {"context", data::QueryPart::kContext}, {"new_targets", data::QueryPart::kNewTargets}};
    for (const auto& [name, part] : parts) {
      const data::AnyTaskSampler<float> only(data::QueryPartTasks<float>(tasks, part));
      const algorithms::EvalResult r = learner.evaluate(only, episodes);
      j[name] = {{"mean", r.mean}, {"ci95", r.ci95}};
    }
    std::vector<double> all(episodes), context(episodes), beyond(episodes);
    for (std::size_t i = 0; i < episodes; ++i) {
      Generator gen = algorithms::episode_generator(learner.options().seed, i);
      const data::Task<float> task = tasks.sample(gen);
      all[i] = family.oracle_log_likelihood(task);
      context[i] = family.oracle_log_likelihood(data::query_part(task, data::QueryPart::kContext));
      beyond[i] =
          family.oracle_log_likelihood(data::query_part(task, data::QueryPart::kNewTargets));
    }
    Json oracle = Json::object();
    for (const auto& [name, values] : {std::pair<const char*, std::vector<double>*>{"all", &all},
                                       {"context", &context},
                                       {"new_targets", &beyond}}) {
      const auto r = algorithms::EvalResult::from_values(std::move(*values));
      oracle[name] = {{"mean", r.mean}, {"ci95", r.ci95}};
    }
    j["exact_gp"] = std::move(oracle);
    return j;
  } else {
    (void)c, (void)learner, (void)tasks, (void)episodes;
    return Json();
  }
}

/// The line that states gp_parts().
std::string gp_parts_line(const Json& parts) {
  const auto v = [](const Json& x) {
    return fmt::format("{:.4f} +- {:.4f}", x.at("mean").get<double>(), x.at("ci95").get<double>());
  };
  const Json& o = parts.at("exact_gp");
  return fmt::format(
      "log-likelihood on the context points {}, on the further targets {}; the exact GP on the "
      "same tasks: {} (all targets), {} (context), {} (further targets)\n",
      v(parts.at("context")), v(parts.at("new_targets")), v(o.at("all")), v(o.at("context")),
      v(o.at("new_targets")));
}

std::string metric_of(const RunConfig& c) {
  if (c.tasks == "gp" || c.tasks == "images") return "log-likelihood";
  if (environment(c)) return "return";
  return classification(c) ? "accuracy" : "mse";
}

/// "97.52% +- 0.41%" for accuracies, "0.0123 +- 0.0011" for errors.
std::string format_result(const RunConfig& c, double mean, double ci95) {
  if (classification(c)) return fmt::format("{:.2f}% +- {:.2f}%", 100 * mean, 100 * ci95);
  if (c.tasks == "gp" || c.tasks == "images") return fmt::format("{:.4f} +- {:.4f}", mean, ci95);
  if (environment(c)) return fmt::format("{:.2f} +- {:.2f}", mean, ci95);
  return fmt::format("{:.4g} +- {:.2g}", mean, ci95);
}

/// The part of a config a resumed run must share with the run that wrote its
/// checkpoint (everything but how long it trains and what it writes).
std::string identity_of(const RunConfig& c) {
  Json j = to_json(c);
  j.erase("run");
  return j.dump();
}

}  // namespace

const std::map<std::string, std::vector<std::string>>& algorithm_tasks() {
  static const std::map<std::string, std::vector<std::string>> pairs{
      {"maml", {"sinusoid", "omniglot", "glyphs"}},
      {"reptile", {"sinusoid", "omniglot", "glyphs"}},
      {"protonet", {"omniglot", "glyphs"}},
      {"matching", {"omniglot", "glyphs"}},
      {"cnp", {"gp", "images"}},
      {"np", {"gp", "images"}},
      {"anp", {"gp", "images"}},
      {"rl2", {"bandits", "mdps"}}};
  return pairs;
}

RunConfig default_config(const std::string& algorithm, const std::string& tasks) {
  const auto& pairs = algorithm_tasks();
  const auto it = pairs.find(algorithm);
  std::string names;
  for (const auto& [name, families] : pairs) names += (names.empty() ? "" : ", ") + name;
  METALEARN_CHECK(it != pairs.end(), ValueError, "metalearn: unknown algorithm '", algorithm, "' (",
                  names, ")");
  std::string families;
  for (const auto& f : it->second) families += (families.empty() ? "" : ", ") + f;
  METALEARN_CHECK(std::find(it->second.begin(), it->second.end(), tasks) != it->second.end(),
                  ValueError, "metalearn: ", algorithm, " does not train on --tasks '", tasks,
                  "' (", families, ")");
  RunConfig c;
  c.algorithm = algorithm;
  c.tasks = tasks;
  const bool images = tasks != "sinusoid";
  if (algorithm == "maml") {
    // Finn et al. 2017: sinusoid (K = 10, meta-batch 25, inner lr 0.01) and Omniglot
    // 5-way 1-shot (meta-batch 32, inner lr 0.4, 1 step in training, 3 at test).
    algorithms::MamlOptions<float> o;
    if (images) {
      o.inner_lr = 0.4f;
      o.eval_inner_steps = 3;
      o.loss = algorithms::LossKind::kCrossEntropy;
      c.task = {.ways = 5, .shots = 1, .eval_queries = 15, .meta_batch = 32};
      c.run.steps = 60000;
    } else {
      o.batch_tasks = true;
      c.task = {.shots = 10, .queries = 10, .eval_queries = 10, .meta_batch = 25};
      c.run = {
          .steps = 20000, .eval_every = 5000, .eval_episodes = 100, .final_eval_episodes = 1000};
    }
    c.options = maml_table().to_json(o);
  } else if (algorithm == "reptile") {
    // Nichol et al. 2018: sinusoid (SGD 0.01, 5 steps, meta-batch 5, outer 0.1
    // annealed) and Omniglot (Adam 1e-3, beta1 0, 5 steps of 10, 50 at test).
    algorithms::ReptileOptions<float> o;
    if (images) {
      o.carry_inner_state = true;
      o.inner_batch = 10;
      o.eval_inner_batch = 5;
      o.outer_step_final = 0.0f;
      o.anneal_steps = 100000;
      c.task = {.ways = 5,
                .shots = 10,
                .queries = 0,
                .eval_shots = 1,
                .eval_queries = 1,
                .meta_batch = 5};
      c.run.steps = 100000;
    } else {
      o.inner_optimizer = algorithms::InnerOptimizer::kSgd;
      o.inner_lr = 0.01f;
      o.inner_batch = 0;
      o.outer_step = 0.1f;
      o.outer_step_final = 0.0f;
      o.anneal_steps = 30000;
      o.loss = algorithms::LossKind::kMse;
      c.task = {.shots = 10, .queries = 10, .eval_queries = 10, .meta_batch = 5};
      c.run = {
          .steps = 30000, .eval_every = 5000, .eval_episodes = 100, .final_eval_episodes = 1000};
    }
    c.options = reptile_table().to_json(o);
  } else if (algorithm == "protonet") {
    // Snell et al. 2017: 60-way 5-shot 5-query training episodes, Adam 1e-3 halved
    // every 2,000 episodes, tested 5-way.
    algorithms::ProtoNetOptions<float> o;
    c.task = {
        .ways = 60, .shots = 5, .queries = 5, .eval_ways = 5, .eval_queries = 15, .meta_batch = 1};
    c.run.steps = 20000;
    c.options = protonet_table().to_json(o);
  } else if (algorithm == "matching") {
    // Vinyals et al. 2016: 5-way 1-shot episodes, cosine attention.
    algorithms::MatchingNetOptions<float> o;
    c.task = {.ways = 5, .shots = 1, .queries = 5, .eval_queries = 15, .meta_batch = 1};
    c.run.steps = 20000;
    c.options = matching_table().to_json(o);
  } else if (algorithm == "rl2") {
    // Duan et al. 2016: a GRU of 256 units, gamma 0.99, lambda 0.3; bandits of 5 arms
    // and 10 pulls, or MDPs of 10 states, 5 actions, 10 episodes of 10 steps; PPO with
    // 128 trials per meta-step and Adam 1e-3 (benchmarks/reproduce/rl2_*.sh).
    algorithms::Rl2Options o;
    o.lr = 1e-3;
    c.run = {.steps = 3000,
             .eval_every = 100,
             .eval_episodes = 1000,
             .final_eval_episodes = 1000,
             .log_every = 10};
    c.options = rl2_table().to_json(o);
  } else if (tasks == "images") {  // cnp, np or anp
    // Image completion (Garnelo et al. 2018; Kim et al. 2019), as
    // examples/neural_process_images: 3..200 random context pixels, every pixel a target,
    // batches of 16, Adam 1e-4, 20,000 steps.
    c.images = {.min_context = 3, .max_context = 200, .targets_include_context = true};
    c.task.meta_batch = 16;
    c.run = {.steps = 20000,
             .eval_every = 5000,
             .eval_episodes = 300,
             .final_eval_episodes = 1000,
             .log_every = 100};
  } else if (algorithm == "cnp" || algorithm == "np" || algorithm == "anp") {
    // The DeepMind notebooks' protocols, noise 0.02, x in [-2, 2], the targets include
    // the context, Adam 1e-4. The CNP's: EQ kernel (0.4, 1.0), 3..9 context points,
    // batches of 64, 80,000 steps. The NP's and ANP's (the ANP notebook): EQ kernels of
    // length scale from [0.1, 0.6) and signal scale from [0.1, 1.0) drawn per task,
    // 3..49 context points, batches of 16, 100,000 steps.
    const bool cnp = algorithm == "cnp";
    const Index most = cnp ? 9 : 49;
    c.gp = {.length_scale = cnp ? 0.4 : 0.1,
            .signal_scale = cnp ? 1.0 : 0.1,
            .length_scale_max = cnp ? 0.0 : 0.6,
            .signal_scale_max = cnp ? 0.0 : 1.0,
            .noise_std = 0.02,
            .min_context = 3,
            .max_context = most,
            .min_target = 2,
            .max_target = most,
            .x_min = -2.0,
            .x_max = 2.0,
            .targets_include_context = true};
    c.task.meta_batch = cnp ? 64 : 16;
    c.run = {.steps = cnp ? 80000 : 100000,
             .eval_every = 10000,
             .eval_episodes = 3200,
             .final_eval_episodes = algorithm == "cnp" ? 32000 : 3200,
             .log_every = 100};
  }
  if (algorithm == "cnp") c.options = cnp_table().to_json(algorithms::CnpOptions{});
  if (algorithm == "np" || algorithm == "anp") {
    // The reference sizes; the ANP with 8-head cross-attention.
    algorithms::NpOptions o;
    if (algorithm == "anp") o.attention_heads = 8;
    c.options = np_table().to_json(o);
  }
  return c;
}

namespace {

template <class F>
decltype(auto) with_table(const std::string& algorithm, F&& f) {
  if (algorithm == "maml") return f(maml_table());
  if (algorithm == "reptile") return f(reptile_table());
  if (algorithm == "protonet") return f(protonet_table());
  if (algorithm == "matching") return f(matching_table());
  if (algorithm == "cnp") return f(cnp_table());
  if (algorithm == "rl2") return f(rl2_table());
  return f(np_table());
}

}  // namespace

void add_config_flags(CLI::App& app, const RunConfig& defaults, GivenFlags& given) {
  with_table(defaults.algorithm, [&](const auto& table) {
    typename std::remove_cvref_t<decltype(table)>::Struct o{};
    table.from_json(defaults.options, o, "defaults");
    table.add_flags(app, o, given.options, table.name());
  });
  task_table_of(defaults).add_flags(app, defaults.task, given.task, "Tasks");
  if (defaults.tasks == "gp") gp_table().add_flags(app, defaults.gp, given.gp, "Gaussian process");
  if (defaults.tasks == "bandits") {
    bandit_table().add_flags(app, defaults.bandits, given.bandits, "Bandits");
  }
  if (defaults.tasks == "mdps") mdp_table().add_flags(app, defaults.mdp, given.mdp, "MDPs");
  if (defaults.tasks == "images") {
    image_table().add_flags(app, defaults.images, given.images, "Image completion");
  }
  run_table().add_flags(app, defaults.run, given.run, "Run");
}

void apply_flags(const GivenFlags& given, RunConfig& config) {
  task_table_of(config).apply(given.task, config.task);
  gp_table().apply(given.gp, config.gp);
  bandit_table().apply(given.bandits, config.bandits);
  mdp_table().apply(given.mdp, config.mdp);
  image_table().apply(given.images, config.images);
  run_table().apply(given.run, config.run);
  with_table(config.algorithm, [&](const auto& table) {
    typename std::remove_cvref_t<decltype(table)>::Struct o{};
    table.from_json(config.options, o, "config");
    table.apply(given.options, o);
    config.options = table.to_json(o);
  });
}

Json to_json(const RunConfig& c) {
  Json j{{"format", kConfigFormat},
         {"version", kConfigVersion},
         {"algorithm", c.algorithm},
         {"tasks", c.tasks},
         {"task", task_table_of(c).to_json(c.task)},
         {"run", run_table().to_json(c.run)},
         {"options", c.options}};
  if (c.tasks == "gp") j["gp"] = gp_table().to_json(c.gp);
  if (c.tasks == "bandits") j["bandits"] = bandit_table().to_json(c.bandits);
  if (c.tasks == "mdps") j["mdp"] = mdp_table().to_json(c.mdp);
  if (c.tasks == "images") j["images"] = image_table().to_json(c.images);
  return j;
}

RunConfig config_from_json(const Json& j, const std::string& file) {
  METALEARN_CHECK(j.is_object() && j.value("format", "") == kConfigFormat, ValueError, file,
                  ": not a metalearn run configuration (\"format\": \"", kConfigFormat, "\")");
  METALEARN_CHECK(j.value("version", 0) == kConfigVersion, ValueError, file, ": version ",
                  j.value("version", 0), " of the run configuration; this metalearn reads ",
                  kConfigVersion);
  for (const char* key : {"algorithm", "tasks"}) {
    METALEARN_CHECK(j.contains(key) && j.at(key).is_string(), ValueError, file, ": no \"", key,
                    "\" string");
  }
  RunConfig c =
      default_config(j.at("algorithm").get<std::string>(), j.at("tasks").get<std::string>());
  if (j.contains("task")) task_table_of(c).from_json(j.at("task"), c.task, file);
  if (j.contains("gp")) gp_table().from_json(j.at("gp"), c.gp, file);
  if (j.contains("bandits")) bandit_table().from_json(j.at("bandits"), c.bandits, file);
  if (j.contains("mdp")) mdp_table().from_json(j.at("mdp"), c.mdp, file);
  if (j.contains("images")) image_table().from_json(j.at("images"), c.images, file);
  if (j.contains("run")) run_table().from_json(j.at("run"), c.run, file);
  if (j.contains("options")) {
    with_table(c.algorithm, [&](const auto& table) {
      typename std::remove_cvref_t<decltype(table)>::Struct o{};
      table.from_json(c.options, o, file);
      table.from_json(j.at("options"), o, file);
      c.options = table.to_json(o);
    });
  }
  return c;
}

RunConfig read_config(const fs::path& run_dir) {
  const fs::path path = run_dir / "config.json";
  METALEARN_CHECK(fs::exists(path), IoError, "metalearn: ", run_dir.string(),
                  " holds no run (no config.json)");
  return config_from_json(read_json(path), path.string());
}

RunConfig read_config(const fs::path& run_dir, const Distribution& distribution) {
#if defined(METALEARN_CLI_WITH_MPI)
  if (distribution.enabled) {
    const distributed::Communicator world;
    std::vector<std::byte> bytes;
    if (world.rank() == 0) {
      const std::string text = to_json(read_config(run_dir)).dump();
      bytes.resize(text.size());
      std::memcpy(bytes.data(), text.data(), text.size());
    }
    world.broadcast(bytes, 0);
    std::string text(bytes.size(), '\0');
    std::memcpy(text.data(), bytes.data(), bytes.size());
    return config_from_json(Json::parse(text), (run_dir / "config.json").string());
  }
#else
  (void)distribution;
#endif
  return read_config(run_dir);
}

namespace {

/// What the console says, what results.json holds and report.html shows when a fit()
/// call of `config` has ended with `result`; `figure` is the report's task figure (null
/// for none). Without `write` (a rank other than 0), only the outcome.
TrainOutcome record(const RunConfig& config, const fs::path& run_dir,
                    const train::FitResult& result, Json figure, std::ostream& out, bool write,
                    const Json& parts = Json()) {
  const RunSettings& r = config.run;
  TrainOutcome o;
  o.start_step = result.start_step;
  o.steps = result.steps;
  o.seconds = result.seconds;
  o.finished = result.steps >= r.steps;
  o.stopped = result.out_of_time;
  if (result.start_step > 0) out << fmt::format("continued from step {}\n", result.start_step);
  if (o.stopped) {
    out << fmt::format(
        "stopped after step {} with a checkpoint; continue with `metalearn "
        "resume {}`\n",
        result.steps, run_dir.string());
  }
  const double rate = result.seconds > 0
                          ? static_cast<double>(result.steps - result.start_step) / result.seconds
                          : 0.0;
  Json results{{"algorithm", config.algorithm},
               {"tasks", config.tasks},
               {"steps", result.steps},
               {"finished", o.finished},
               {"seconds_this_call", result.seconds},
               {"train_seconds", result.train_seconds},
               {"steps_per_second", rate}};
  if (result.last_eval && o.finished) {
    o.final_mean = result.last_eval->mean;
    o.final_ci95 = result.last_eval->ci95;
    o.final_episodes = result.last_eval->episodes;
    results["final"] = {{"metric", metric_of(config)},
                        {"mean", o.final_mean},
                        {"ci95", o.final_ci95},
                        {"episodes", o.final_episodes}};
    out << fmt::format("final test {}: {} over {} {}; {:.2f} meta-steps/s\n", metric_of(config),
                       format_result(config, o.final_mean, o.final_ci95), o.final_episodes,
                       environment(config) ? "trials" : "episodes", rate);
    if (!parts.is_null()) {
      for (const auto& [key, value] : parts.items()) results["final"][key] = value;
      out << gp_parts_line(parts);
    }
  }
  if (!figure.is_null()) results["figure"] = std::move(figure);
  if (write) {
    write_file_atomically(run_dir / "results.json", results.dump(2) + "\n");
    write_report({run_dir}, run_dir / "report.html");
  }
  return o;
}

/// The "config" setting the run's checkpoints carry (train::fit refuses to continue from
/// a checkpoint whose settings differ): identity_of(config), unless the folder's
/// checkpoint holds another text that reads back as the same run. That is a checkpoint
/// written before an option of the algorithm existed: its text lacks the option, which
/// config_from_json() then sets to its default, and an option's default keeps the
/// behaviour runs had before it, so such a run continues. Any other difference, or a
/// checkpoint that cannot be read, is left for train::fit to report.
std::string checkpoint_identity(const RunConfig& config, const fs::path& checkpoint) {
  const std::string identity = identity_of(config);
  std::error_code error;
  if (!fs::exists(checkpoint, error)) return identity;
  try {
    const io::Metadata metadata = io::read_safetensors_metadata(checkpoint);
    const auto it = metadata.find("config");
    if (it == metadata.end() || it->second == identity) return identity;
    const RunConfig stored = config_from_json(Json::parse(it->second), checkpoint.string());
    if (identity_of(stored) == identity) return it->second;
  } catch (const Error&) {
  } catch (const Json::exception&) {
  }
  return identity;
}

}  // namespace

bool distributed_available() {
#if defined(METALEARN_CLI_WITH_MPI)
  return true;
#else
  return false;
#endif
}

TrainOutcome train(const RunConfig& config, const fs::path& run_dir, bool resume,
                   const Reporting& reporting, const Distribution& distribution) {
  std::ostream& out = *reporting.out;
  METALEARN_CHECK(!distribution.enabled || distributed_available(), ValueError,
                  "metalearn: --distributed needs a metalearn built with MPI "
                  "(METALEARN_WITH_MPI; Debian: libopenmpi-dev openmpi-bin)");
  METALEARN_CHECK(!distribution.enabled || !environment(config), ValueError,
                  "metalearn: --distributed shares each meta-batch of tasks among the ranks; ",
                  config.algorithm, " on ", config.tasks,
                  " collects its own trials and has no meta-batch of tasks (run it in one "
                  "process, with its threads option)");
#if defined(METALEARN_CLI_WITH_MPI)
  std::optional<distributed::Communicator> world;
  if (distribution.enabled) world.emplace();
  const bool writer = !world || world->rank() == 0;
#else
  const bool writer = true;
#endif
  const fs::path config_path = run_dir / "config.json";
  if (writer) {
    if (fs::exists(config_path)) {
      const RunConfig existing = read_config(run_dir);
      METALEARN_CHECK(resume, ValueError, "metalearn: ", run_dir.string(),
                      " already holds a run (config.json); continue it with `metalearn resume ",
                      run_dir.string(), "` or choose another --out");
      METALEARN_CHECK(identity_of(existing) == identity_of(config), ValueError,
                      "metalearn: ", config_path.string(),
                      " describes another run than the one asked for");
    }
  }
  // Written once the learner and its tasks are built, so that a configuration they
  // refuse leaves no run folder behind.
  const auto write_config = [&] {
    if (!writer) return;
    fs::create_directories(run_dir);
    write_file_atomically(config_path, to_json(config).dump(2) + "\n");
  };

  const RunSettings& r = config.run;
  const std::string unit = environment(config) ? "trials" : "episodes";
  // Where stderr is not a terminal (a log file, CI), fit draws no progress line: a plain
  // line goes to `out` once a minute instead.
  const bool plain = reporting.progress && !train::detail::stderr_is_terminal();
  using Clock = std::chrono::steady_clock;
  Clock::time_point last_line = Clock::now();
  std::int64_t last_step = -1;
  const train::FitOptions fit{
      .steps = r.steps,
      .time_limit = r.time_limit,
      .eval_every = r.eval_every,
      .eval_episodes = static_cast<std::size_t>(r.eval_episodes),
      .final_eval_episodes = static_cast<std::size_t>(r.final_eval_episodes),
      .checkpoint_every = r.eval_every,
      .keep = r.keep,
      .log_every = r.log_every,
      .run_dir = run_dir,
      .resume = true,
      .progress = reporting.progress,
      .settings = {{"config", checkpoint_identity(config, run_dir / "checkpoint.safetensors")}},
      .on_step =
          [&](std::int64_t step, const algorithms::StepStats& stats) {
            if (last_step < 0) last_step = step - 1;
            const double seconds = std::chrono::duration<double>(Clock::now() - last_line).count();
            if (!plain || (seconds < 60.0 && step < r.steps)) return;
            const double rate = static_cast<double>(step - last_step) / std::max(seconds, 1e-9);
            const auto left = static_cast<std::int64_t>(static_cast<double>(r.steps - step) /
                                                        std::max(rate, 1e-9));
            std::string line =
                fmt::format("step {}/{}  meta-loss {:.4f}", step, r.steps, stats.meta_loss);
            if (stats.mean_return) line += fmt::format("  return {:.2f}", *stats.mean_return);
            if (stats.post_accuracy) line += fmt::format("  accuracy {:.3f}", *stats.post_accuracy);
            out << line
                << fmt::format("  {:.2f} steps/s  ETA {}:{:02}:{:02}\n", rate, left / 3600,
                               left / 60 % 60, left % 60)
                << std::flush;
            last_line = Clock::now();
            last_step = step;
          },
      .on_eval =
          [&](std::int64_t step, const algorithms::EvalResult& e) {
            out << fmt::format("step {}  test {} {} ({} {})\n", step, metric_of(config),
                               format_result(config, e.mean, e.ci95), e.episodes, unit)
                << std::flush;
          },
      .stop = reporting.stop};
  if (environment(config)) {
    out << fmt::format("{} on {}: {} meta-steps of {} trials, run folder {}\n", config.algorithm,
                       config.tasks, r.steps, config.options.value("trials", 0), run_dir.string())
        << std::flush;
    return with_environment_learner(config, [&](auto& learner) {
      write_config();
      const train::FitResult result = train::fit(learner, fit);
      return record(config, run_dir, result, trial_figure(config, learner), out, true);
    });
  }
  std::string ranks;
#if defined(METALEARN_CLI_WITH_MPI)
  if (world) {
    ranks = fmt::format(" over {} rank(s){}", world->size(),
                        distribution.deterministic ? ", deterministic" : "");
  }
#endif
  out << fmt::format("{} on {}: {} meta-steps of {} task(s){}, run folder {}\n", config.algorithm,
                     config.tasks, r.steps, config.task.meta_batch, ranks, run_dir.string())
      << std::flush;
  return with_learner(
      config, out,
      [&](auto& learner, auto& batches, const auto& test_tasks, const nn::Module<float>* model) {
        write_config();
        train::FitResult result;
#if defined(METALEARN_CLI_WITH_MPI)
        if (world) {
          // Rank r draws tasks r, r + R, ... of the stream `batches` would give.
          using T = typename std::decay_t<decltype(learner)>::value_type;
          distributed::ShardedBatches<T> shards(batches.sampler(), batches.options(), world->rank(),
                                                world->size());
          distributed::DistributedTrainer trainer(learner, *world,
                                                  {.deterministic = distribution.deterministic});
          result = trainer.fit(shards, fit, &test_tasks);
        }
#endif
        if (!distribution.enabled) result = train::fit(learner, batches, fit, &test_tasks);
        Json figure = !writer ? Json()
                      : config.tasks == "sinusoid" && model != nullptr
                          ? sinusoid_figure(config, learner, *model)
                      : config.tasks == "gp" ? gp_figure(config, learner)
                                             : Json();
        const bool finished = result.steps >= r.steps && result.last_eval.has_value();
        const Json parts = writer && finished
                               ? gp_parts(config, learner, test_tasks, result.last_eval->episodes)
                               : Json();
        return record(config, run_dir, result, std::move(figure), out, writer, parts);
      });
}

Evaluation evaluate(const fs::path& target, const EvalRequest& request, std::ostream& out) {
  const bool file = fs::is_regular_file(target);
  const fs::path run_dir = file ? target.parent_path() : target;
  RunConfig config = read_config(run_dir);
  const fs::path checkpoint = file ? target : run_dir / "checkpoint.safetensors";
  METALEARN_CHECK(fs::exists(checkpoint), IoError, "metalearn: ", run_dir.string(),
                  " has no checkpoint.safetensors yet");
  if (environment(config)) {
    METALEARN_CHECK(!request.ways && !request.shots && !request.steps, ValueError,
                    "metalearn evaluate: --ways, --shots and --steps describe episodes of "
                    "supervised tasks; ",
                    config.algorithm, " on ", config.tasks,
                    " is evaluated on --episodes fresh environments (trials)");
    return with_environment_learner(config, [&](auto& learner) {
      using L = std::remove_cvref_t<decltype(learner)>;
      (void)train::load_checkpoint(checkpoint, learner);
      // The trials of learner.evaluate(episodes), collected once for the score and for
      // the mean reward at every step (the curve beside the baselines' env::Score).
      const algorithms::TrialBatch b =
          learner.collect(learner.family(), learner.options().seed, env::Split::kTest, 0,
                          static_cast<Index>(request.episodes));
      const algorithms::EvalResult r = algorithms::EvalResult::from_values(b.trial_returns());
      Evaluation e{r.mean, r.ci95, r.episodes, learner.steps_taken(), metric_of(config)};
      out << fmt::format("{} after {} meta-steps on {}: mean {} per trial {} over {} trials\n",
                         config.algorithm, e.step, config.tasks, e.metric,
                         format_result(config, e.mean, e.ci95), e.episodes);
      Json j{{"checkpoint", checkpoint.filename().string()},
             {"step", e.step},
             {"metric", e.metric},
             {"mean", e.mean},
             {"ci95", e.ci95},
             {"episodes", e.episodes}};
      Json& steps = j["mean_rewards"] = Json::array();
      for (Index t = 0; t < b.steps(); ++t) {
        double sum = 0.0;
        for (Index m = 0; m < b.trials; ++m) sum += b.rewards[b.at(m, t)];
        steps.push_back(sum / static_cast<double>(b.trials));
      }
      // The mean of value(environment) over the same test environments.
      const auto over_trials = [&](auto value) {
        double sum = 0.0;
        for (Index m = 0; m < b.trials; ++m) {
          sum += value(learner.family().make(learner.options().seed, env::Split::kTest,
                                             static_cast<std::uint64_t>(m)));
        }
        return sum / static_cast<double>(b.trials);
      };
      if constexpr (std::is_same_v<typename L::family_type, env::BernoulliBandits>) {
        // Regret after pull j is j * best_mean - the sum of mean_rewards over pulls 1..j.
        j["best_mean"] = over_trials([](const auto& bandit) { return bandit.best_mean(); });
      } else {
        // Regret after episode j is j * optimal_episode - the rewards of its steps.
        j["optimal_episode"] =
            over_trials([](const auto& mdp) { return mdp.optimal_episode_value(); });
      }
      write_file_atomically(run_dir / "evaluation.json", j.dump(2) + "\n");
      return e;
    });
  }
  if (request.ways) config.task.eval_ways = *request.ways;
  if (request.shots) config.task.eval_shots = *request.shots;
  if (request.steps) {
    METALEARN_CHECK(config.options.contains("eval_inner_steps"), ValueError,
                    "metalearn evaluate: --steps sets the inner steps at test, which ",
                    config.algorithm, " does not take (it adapts without gradient steps)");
    config.options["eval_inner_steps"] = *request.steps;
  }
  return with_learner(
      config, out, [&](auto& learner, auto&, const auto& test_tasks, const nn::Module<float>*) {
        (void)train::load_checkpoint(checkpoint, learner);
        const algorithms::EvalResult r = learner.evaluate(test_tasks, request.episodes);
        Evaluation e{r.mean, r.ci95, r.episodes, learner.steps_taken(), metric_of(config)};
        const Index ways = config.task.eval_ways.value_or(config.task.ways);
        const Index shots = config.task.eval_shots.value_or(config.task.shots);
        const std::string shape =
            classification(config)       ? fmt::format(", {}-way {}-shot", ways, shots)
            : config.tasks == "sinusoid" ? fmt::format(", {} support points", shots)
                                         : std::string();
        out << fmt::format("{} after {} meta-steps{}: test {} {} over {} episodes\n",
                           config.algorithm, e.step, shape, e.metric,
                           format_result(config, e.mean, e.ci95), e.episodes);
        Json j{{"checkpoint", checkpoint.filename().string()},
               {"step", e.step},
               {"metric", e.metric},
               {"mean", e.mean},
               {"ci95", e.ci95},
               {"episodes", e.episodes},
               {"ways", ways},
               {"shots", shots}};
        if (config.options.contains("eval_inner_steps")) {
          j["inner_steps"] = config.options["eval_inner_steps"];
        }
        const Json parts = gp_parts(config, learner, test_tasks, request.episodes);
        if (!parts.is_null()) {
          for (const auto& [key, value] : parts.items()) j[key] = value;
          out << gp_parts_line(parts);
        }
        write_file_atomically(run_dir / "evaluation.json", j.dump(2) + "\n");
        return e;
      });
}

void inspect(const fs::path& file, std::ostream& out) {
  const io::StoredFile stored = io::inspect_safetensors(file);
  std::size_t values = 0;
  for (const auto& t : stored.tensors) values += t.values.size();
  out << fmt::format("{}: {} tensors, {} values\n", file.string(), stored.tensors.size(), values);
  for (const auto& t : stored.tensors) {
    std::string shape;
    for (const Index d : t.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    out << fmt::format("  {:<40} {:<4} [{}]\n", t.name, t.dtype == io::DType::kF32 ? "F32" : "F64",
                       shape);
  }
  if (!stored.metadata.empty()) out << "metadata:\n";
  for (const auto& [key, value] : stored.metadata) {
    out << fmt::format("  {} = {}\n", key, value);
  }
}

}  // namespace metalearn::cli
