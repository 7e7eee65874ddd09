// Data-parallel meta-training over MPI: MAML (Finn et al. 2017, the Omniglot setting:
// ConvNet4, 5-way 1-shot, meta-batch 32, one inner step of 0.4) or Prototypical
// Networks (Snell et al. 2017, 60-way 5-shot training episodes) on Omniglot or the
// embedded glyphs, the tasks of every meta-batch split over the ranks.
//
// Usage: mpirun -np N distributed_omniglot [--algo maml|protonet] [--data DIR]
//          [--ways W] [--shots K] [--queries Q] [--meta-batch B] [--steps S]
//          [--threads T] [--deterministic] [--run-dir DIR] [--eval-episodes E]
//
// Every rank builds the same learner and draws its share of each meta-batch (tasks
// rank, rank + N, ...); one collective per step sums the shares. With
// --deterministic the parameters are bitwise those of the same command on one
// process. Rank 0 prints, per step, the step time and what the collective moved.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <metalearn/distributed.hpp>
#include <metalearn/metalearn.hpp>
#include <string>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;
namespace dist = metalearn::distributed;

namespace {

struct Args {
  std::string algo = "maml", data, run_dir;
  ml::Index ways = 0, shots = 0, queries = 0;
  int meta_batch = 0, steps = 20, threads = 1;
  std::size_t eval_episodes = 0;
  std::uint64_t seed = 1;
  bool deterministic = false;
};

// Training and test classes: Omniglot (Vinyals split) under `root`, or the glyphs.
struct Classes {
  std::shared_ptr<const ml::data::ClassDataset> train, test;
};

Classes load(const std::string& root) {
  if (root.empty()) {
    return {std::make_shared<ml::data::ProceduralGlyphs>(
                ml::data::ProceduralGlyphsOptions{.split = ml::data::Split::kTrain}),
            std::make_shared<ml::data::ProceduralGlyphs>(
                ml::data::ProceduralGlyphsOptions{.split = ml::data::Split::kTest})};
  }
  ml::data::OmniglotDataset all({.root = root, .split = ml::data::OmniglotSplit::kAll});
  return {std::make_shared<ml::data::OmniglotDataset>(
              all.with_split(ml::data::OmniglotSplit::kVinyalsTrain, true)),
          std::make_shared<ml::data::OmniglotDataset>(
              all.with_split(ml::data::OmniglotSplit::kVinyalsTest, false))};
}

template <class L>
int train(L& learner, const Args& a, const Classes& classes, const dist::Communicator& world) {
  const ml::data::EpisodicSampler<float> episodes(
      classes.train, {.ways = a.ways, .shots = a.shots, .queries = a.queries});
  const ml::data::EpisodicSampler<float> test(classes.test,
                                              {.ways = a.ways, .shots = a.shots, .queries = 15});
  const ml::data::AnyTaskSampler<float> test_tasks(test);
  dist::ShardedBatches<float> batches(episodes, {.batch = a.meta_batch, .seed = a.seed},
                                      world.rank(), world.size());
  dist::DistributedTrainer trainer(learner, world, {.deterministic = a.deterministic});
  const bool root = world.rank() == 0;
  if (root) {
    std::printf("%s %lld-way %lld-shot, meta-batch %d on %d rank(s) x %d thread(s)%s\n",
                a.algo.c_str(), static_cast<long long>(a.ways), static_cast<long long>(a.shots),
                a.meta_batch, world.size(), a.threads, a.deterministic ? ", deterministic" : "");
  }
  using Clock = std::chrono::steady_clock;
  auto last = Clock::now();
  double total = 0.0;
  double collective = 0.0;
  int timed = 0;
  std::int64_t first_step = -1;
  ml::train::FitOptions options{.steps = a.steps,
                                .eval_episodes = a.eval_episodes,
                                .checkpoint_every = a.run_dir.empty() ? 0 : 100,
                                .run_dir = a.run_dir,
                                .progress = false};
  options.settings = {{"algo", a.algo},
                      {"ways", std::to_string(a.ways)},
                      {"shots", std::to_string(a.shots)},
                      {"meta_batch", std::to_string(a.meta_batch)}};
  options.on_step = [&](std::int64_t step, const alg::StepStats& s) {
    const auto now = Clock::now();
    if (first_step < 0) first_step = step;
    const double seconds = std::chrono::duration<double>(now - last).count();
    last = now;
    const dist::CollectiveStats& c = trainer.last_collective();
    // The first step of the call builds buffers and caches: left out of the means.
    if (step > first_step) {
      total += seconds;
      collective += c.seconds;
      ++timed;
    }
    if (root) {
      std::printf(
          "step %lld  loss %.4f  acc %.3f  %.1f ms  (collective %zu B out, %zu B in, %.2f ms)\n",
          static_cast<long long>(step), s.meta_loss, s.post_accuracy.value_or(0.0), 1e3 * seconds,
          c.bytes, c.received, 1e3 * c.seconds);
      std::fflush(stdout);
    }
  };
  const ml::train::FitResult r = trainer.fit(batches, options, root ? &test_tasks : nullptr);
  if (root && timed > 0) {
    std::printf(
        "mean over %d step(s) (the first of this call left out): %.1f ms a step, %.2f ms "
        "of it in the collective\n",
        timed, 1e3 * total / timed, 1e3 * collective / timed);
  }
  if (root && r.last_eval) {
    std::printf("test accuracy %.2f +- %.2f %% (%zu episodes)\n", 100 * r.last_eval->mean,
                100 * r.last_eval->ci95, r.last_eval->episodes);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  dist::Environment mpi(argc, argv);
  const dist::Communicator world;
  Args a;
  CLI::App app("Data-parallel meta-training over MPI (run under mpirun -np N)");
  app.add_option("--algo", a.algo, "maml or protonet")->check(CLI::IsMember({"maml", "protonet"}));
  app.add_option("--data", a.data, "Omniglot root (images_background/, images_evaluation/)");
  app.add_option("--ways", a.ways, "classes per task (MAML 5, ProtoNet 60)");
  app.add_option("--shots", a.shots, "support examples per class (MAML 1, ProtoNet 5)");
  app.add_option("--queries", a.queries, "query examples per class (MAML 1, ProtoNet 5)");
  app.add_option("--meta-batch", a.meta_batch, "tasks per meta-step (MAML 32, ProtoNet 2)");
  app.add_option("--steps", a.steps, "meta-steps");
  app.add_option("--threads", a.threads, "threads per rank");
  app.add_option("--eval-episodes", a.eval_episodes, "test episodes at the end (rank 0)");
  app.add_option("--run-dir", a.run_dir, "checkpoints and metrics (rank 0), resumed when present");
  app.add_option("--seed", a.seed, "seed of the model and the task stream");
  app.add_flag("--deterministic", a.deterministic,
               "bitwise the single-process run (all-gather of every task's gradient)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return world.rank() == 0 ? app.exit(e) : (e.get_exit_code() == 0 ? 0 : 1);
  }
  const bool maml = a.algo == "maml";
  if (a.ways == 0) a.ways = maml ? 5 : 60;
  if (a.shots == 0) a.shots = maml ? 1 : 5;
  if (a.queries == 0) a.queries = maml ? a.shots : 5;
  if (a.meta_batch == 0) a.meta_batch = maml ? 32 : 2;
  return dist::or_abort(world, [&] {
    const Classes classes = load(a.data);
    ml::Generator gen(a.seed);
    if (maml) {
      ml::nn::ConvNet4<float> model(ml::nn::ConvNet4Options{.ways = a.ways}, gen);
      alg::Maml<float> learner(model, alg::MamlOptions<float>{.inner_lr = 0.4f,
                                                              .inner_steps = 1,
                                                              .eval_inner_steps = 3,
                                                              .outer_lr = 1e-3f,
                                                              .loss = alg::LossKind::kCrossEntropy,
                                                              .threads = a.threads,
                                                              .seed = a.seed + 7});
      return train(learner, a, classes, world);
    }
    alg::ProtoNet<float> learner(gen,
                                 alg::ProtoNetOptions<float>{.threads = a.threads, .seed = a.seed});
    return train(learner, a, classes, world);
  });
}
