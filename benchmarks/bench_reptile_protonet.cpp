// Reptile and Prototypical Networks speed: one Reptile meta-step (sinusoid MLP and
// the paper's strided Omniglot ConvNet), one ProtoNet training episode (ConvNet4,
// 5-way and 60-way) and one ProtoNet test episode, at 1 and 2 threads where the
// algorithm parallelises over tasks.
// Counters: meta_steps/s or episodes/s, and tasks/s (items_per_second).
#include <benchmark/benchmark.h>

#include <memory>
#include <metalearn/metalearn.hpp>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;

namespace {

void rate(benchmark::State& state, const char* name, std::int64_t items) {
  state.SetItemsProcessed(state.iterations() * items);
  state.counters[name] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// ---- Reptile, sinusoid: 1-40-40-1 ReLU MLP, K = 10, full-batch SGD -------------
// Args: meta-batch, inner steps, threads.
void BM_ReptileSinusoidMetaStep(benchmark::State& state) {
  const auto batch = state.range(0);
  ml::Generator gen(1);
  ml::nn::MLP<float> model({1, 40, 40, 1}, gen);
  alg::Reptile<float> reptile(
      model, alg::ReptileOptions<float>{.inner_optimizer = alg::InnerOptimizer::kSgd,
                                        .inner_lr = 0.02f,
                                        .inner_steps = static_cast<int>(state.range(1)),
                                        .inner_batch = 0,
                                        .outer_step = 0.1f,
                                        .loss = alg::LossKind::kMse,
                                        .threads = static_cast<int>(state.range(2)),
                                        .batch_tasks = state.range(3) != 0});
  ml::data::SinusoidTasks<float> family({.shots = 10, .queries = 0});
  ml::data::MetaBatchSampler<float> batches(family, {.batch = batch, .seed = 1});
  const auto tasks = batches.next();
  for (auto _ : state) benchmark::DoNotOptimize(reptile.meta_step(tasks).meta_loss);
  rate(state, "meta_steps/s", batch);
}
BENCHMARK(BM_ReptileSinusoidMetaStep)
    ->ArgNames({"batch", "steps", "threads", "batched"})
    ->Args({5, 5, 1, 0})
    ->Args({5, 5, 2, 0})
    ->Args({1, 32, 1, 0})
    ->Args({5, 5, 1, 1})
    ->Args({25, 5, 1, 0})
    ->Args({25, 5, 1, 1})
    ->Unit(benchmark::kMillisecond);

// ---- Reptile, Omniglot network: 4x[conv stride 2, BN, ReLU] + linear, 28x28 -----
// The paper's training configuration: 5-way 10-shot tasks, 5 Adam steps on batches
// of 10, meta-batch 5. Args: threads.
void BM_ReptileOmniglotMetaStep(benchmark::State& state) {
  ml::Generator gen(2);
  auto net = std::make_shared<ml::nn::Sequential<float>>();
  ml::Index in = 1;
  for (int b = 0; b < 4; ++b) {
    net->push_back(std::make_shared<ml::nn::Conv2d<float>>(in, 64, 3, gen, 2, 1));
    net->push_back(std::make_shared<ml::nn::BatchNorm2d<float>>(64));
    net->push_back(std::make_shared<ml::nn::ReLU<float>>());
    in = 64;
  }
  net->push_back(std::make_shared<ml::nn::Flatten<float>>());
  net->push_back(std::make_shared<ml::nn::Linear<float>>(64 * 2 * 2, 5, gen));
  alg::Reptile<float> reptile(
      *net, alg::ReptileOptions<float>{.threads = static_cast<int>(state.range(0))});
  ml::data::ProceduralGlyphs glyphs({.split = ml::data::Split::kTrain});
  ml::data::EpisodicSampler<float> episodes(glyphs, {.ways = 5, .shots = 10, .queries = 0});
  ml::data::MetaBatchSampler<float> batches(episodes, {.batch = 5, .seed = 1});
  const auto tasks = batches.next();
  for (auto _ : state) benchmark::DoNotOptimize(reptile.meta_step(tasks).meta_loss);
  rate(state, "meta_steps/s", 5);
}
BENCHMARK(BM_ReptileOmniglotMetaStep)
    ->ArgNames({"threads"})
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond);

// ---- ProtoNet training episode: ConvNet4 (64 channels), 28x28 -------------------
// Args: ways, shots, queries, episodes per meta-batch, threads.
void BM_ProtoNetTrainEpisode(benchmark::State& state) {
  ml::Generator gen(3);
  const auto batch = state.range(3);
  alg::ProtoNet<float> protonet(
      gen, alg::ProtoNetOptions<float>{.threads = static_cast<int>(state.range(4))});
  ml::data::ProceduralGlyphs glyphs({.split = ml::data::Split::kTrain});
  ml::data::EpisodicSampler<float> episodes(
      glyphs, {.ways = state.range(0), .shots = state.range(1), .queries = state.range(2)});
  ml::data::MetaBatchSampler<float> batches(episodes, {.batch = batch, .seed = 1});
  const auto tasks = batches.next();
  for (auto _ : state) benchmark::DoNotOptimize(protonet.meta_step(tasks).meta_loss);
  rate(state, "meta_steps/s", batch);
}
BENCHMARK(BM_ProtoNetTrainEpisode)
    ->ArgNames({"ways", "shots", "queries", "batch", "threads"})
    ->Args({60, 5, 5, 1, 1})
    ->Args({5, 5, 15, 1, 1})
    ->Args({5, 5, 15, 2, 1})
    ->Args({5, 5, 15, 2, 2})
    ->Unit(benchmark::kMillisecond);

// ---- ProtoNet test episode: embed support + queries, classify ------------------
// Args: ways, shots.
void BM_ProtoNetTestEpisode(benchmark::State& state) {
  ml::Generator gen(4);
  alg::ProtoNet<float> protonet(gen);
  ml::data::ProceduralGlyphs glyphs({.split = ml::data::Split::kTest});
  ml::data::EpisodicSampler<float> episodes(
      glyphs, {.ways = state.range(0), .shots = state.range(1), .queries = 15});
  const auto task = episodes.sample(gen);
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        protonet.predict(task.support_x, task.support_labels, task.query_x).data());
  }
  rate(state, "episodes/s", 1);
}
BENCHMARK(BM_ProtoNetTestEpisode)
    ->ArgNames({"ways", "shots"})
    ->Args({5, 1})
    ->Args({20, 5})
    ->Unit(benchmark::kMillisecond);

// ---- PrototypeClassifier: classify 100 queries with a fixed support set ---------
void BM_PrototypeClassifierQueries(benchmark::State& state) {
  ml::Generator gen(5);
  alg::ProtoNet<float> protonet(gen);
  ml::data::ProceduralGlyphs glyphs({.split = ml::data::Split::kTest});
  ml::data::EpisodicSampler<float> episodes(glyphs, {.ways = 5, .shots = 5, .queries = 15});
  const auto task = episodes.sample(gen);
  const auto clf = protonet.classifier(task.support_x, task.support_labels);
  for (auto _ : state) benchmark::DoNotOptimize(clf.classify(task.query_x).data());
  state.SetItemsProcessed(state.iterations() * task.query_x.shape()[0]);
}
BENCHMARK(BM_PrototypeClassifierQueries)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
