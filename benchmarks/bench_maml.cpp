// MAML speed: one meta-step (meta-batch, inner loop, query loss, meta-gradient,
// Adam update) and one inner adaptation step, for the sinusoid MLP and for the
// ConvNet4 few-shot backbone, first and second order, at 1 and 2 threads.
// Counters: meta_steps/s and tasks/s (items_per_second).
#include <benchmark/benchmark.h>

#include <memory>
#include <metalearn/metalearn.hpp>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;

namespace {

// ---- sinusoid: 1-40-40-1 ReLU MLP, K = 10, 10 queries ---------------------------
// Args: meta-batch, inner steps, first order (0/1), threads, batch_tasks (0/1: the
// meta-batch as one graph).
void BM_MamlSinusoidMetaStep(benchmark::State& state) {
  const auto batch = state.range(0);
  const int steps = static_cast<int>(state.range(1));
  const bool first_order = state.range(2) != 0;
  const int threads = static_cast<int>(state.range(3));
  const bool batched = state.range(4) != 0;
  ml::Generator gen(1);
  ml::nn::MLP<float> model({1, 40, 40, 1}, gen);
  alg::Maml<float> maml(model, alg::MamlOptions<float>{.inner_lr = 0.01f,
                                                       .inner_steps = steps,
                                                       .first_order = first_order,
                                                       .threads = threads,
                                                       .batch_tasks = batched});
  ml::data::SinusoidTasks<float> family({.shots = 10, .queries = 10});
  ml::data::MetaBatchSampler<float> batches(family, {.batch = batch, .seed = 1});
  const auto tasks = batches.next();
  for (auto _ : state) benchmark::DoNotOptimize(maml.meta_step(tasks).meta_loss);
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["meta_steps/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MamlSinusoidMetaStep)
    ->ArgNames({"batch", "steps", "first_order", "threads", "batched"})
    ->Args({25, 1, 0, 1, 0})
    ->Args({25, 1, 1, 1, 0})
    ->Args({25, 1, 0, 2, 0})
    ->Args({25, 5, 0, 1, 0})
    ->Args({1, 1, 0, 1, 0})
    ->Args({64, 1, 0, 1, 0})
    ->Args({25, 1, 0, 1, 1})
    ->Args({25, 1, 1, 1, 1})
    ->Args({25, 5, 0, 1, 1})
    ->Args({64, 1, 0, 1, 1})
    ->Unit(benchmark::kMillisecond);

// One inner adaptation step of the sinusoid MLP with create_graph (forward, backward
// with the graph recorded, update).
void BM_MamlSinusoidInnerStep(benchmark::State& state) {
  ml::Generator gen(2);
  ml::nn::MLP<float> model({1, 40, 40, 1}, gen);
  ml::data::SinusoidTasks<float> family({.shots = 10, .queries = 10});
  const auto task = family.sample(gen);
  const auto theta = model.named_parameters();
  for (auto _ : state) {
    auto loss = ml::mse_loss(model.forward(task.support_x, theta), task.support_y);
    auto grads = ml::autograd::grad({loss}, theta.values(), {.create_graph = true});
    auto fast = ml::optim::sgd_update(theta, grads, 0.01f);
    benchmark::DoNotOptimize(fast.values()[0].data());
  }
}
BENCHMARK(BM_MamlSinusoidInnerStep)->Unit(benchmark::kMicrosecond);

// ---- ConvNet4 (64 channels, batch norm), 5-way 1-shot, 28x28 --------------------
// Args: meta-batch, inner steps, first order, threads, queries per class.
void BM_MamlConvNetMetaStep(benchmark::State& state) {
  const auto batch = state.range(0);
  const int steps = static_cast<int>(state.range(1));
  const bool first_order = state.range(2) != 0;
  const int threads = static_cast<int>(state.range(3));
  const auto queries = state.range(4);
  ml::Generator gen(3);
  ml::nn::ConvNet4<float> model(ml::nn::ConvNet4Options{.ways = 5}, gen);
  alg::Maml<float> maml(model, alg::MamlOptions<float>{.inner_lr = 0.4f,
                                                       .inner_steps = steps,
                                                       .first_order = first_order,
                                                       .loss = alg::LossKind::kCrossEntropy,
                                                       .threads = threads});
  auto glyphs = std::make_shared<ml::data::ProceduralGlyphs>();
  ml::data::EpisodicSampler<float> episodes(glyphs, {.ways = 5, .shots = 1, .queries = queries});
  ml::data::MetaBatchSampler<float> batches(episodes, {.batch = batch, .seed = 1});
  const auto tasks = batches.next();
  for (auto _ : state) benchmark::DoNotOptimize(maml.meta_step(tasks).meta_loss);
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["meta_steps/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MamlConvNetMetaStep)
    ->ArgNames({"batch", "steps", "first_order", "threads", "queries"})
    ->Args({32, 1, 0, 1, 1})
    ->Args({32, 1, 0, 2, 1})
    ->Args({32, 1, 1, 1, 1})
    ->Args({5, 5, 0, 1, 1})
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
