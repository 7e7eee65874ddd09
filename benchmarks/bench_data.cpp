// Benchmarks of the data layer: episodes per second over ProceduralGlyphs and Omniglot,
// meta-batches of sinusoid tasks, and the time of a cold and a cached Omniglot load.
//
// The Omniglot benchmarks need METALEARN_OMNIGLOT_DIR (and honour METALEARN_CACHE_DIR);
// without it they report an error and are skipped.

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <metalearn/data.hpp>
#include <string>

namespace ml = metalearn;
namespace md = metalearn::data;
namespace fs = std::filesystem;

namespace {

bool have_omniglot() {
  const char* dir = std::getenv("METALEARN_OMNIGLOT_DIR");
  return dir != nullptr && *dir != '\0';
}

const md::OmniglotDataset& omniglot_train() {
  static const auto ds = std::make_unique<md::OmniglotDataset>(
      md::OmniglotOptions{.split = md::OmniglotSplit::kVinyalsTrain, .rotations = true});
  return *ds;
}

void run_episodes(benchmark::State& state, const md::ClassDataset& ds) {
  const md::EpisodicOptions options{
      .ways = state.range(0), .shots = state.range(1), .queries = state.range(2)};
  md::EpisodicSampler<float> sampler(ds, options);
  ml::Generator gen(1);
  for (auto _ : state) {
    auto task = sampler.sample(gen);
    benchmark::DoNotOptimize(task.support_x.data());
    benchmark::DoNotOptimize(task.query_x.data());
  }
  state.counters["episodes/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_GlyphEpisodes(benchmark::State& state) {
  md::ProceduralGlyphs glyphs;
  run_episodes(state, glyphs);
}
BENCHMARK(BM_GlyphEpisodes)
    ->ArgNames({"ways", "shots", "queries"})
    ->Args({5, 1, 15})
    ->Args({60, 5, 15})
    ->Unit(benchmark::kMicrosecond);

void BM_OmniglotEpisodes(benchmark::State& state) {
  if (!have_omniglot()) {
    state.SkipWithError("METALEARN_OMNIGLOT_DIR is not set");
    return;
  }
  run_episodes(state, omniglot_train());
}
BENCHMARK(BM_OmniglotEpisodes)
    ->ArgNames({"ways", "shots", "queries"})
    ->Args({5, 1, 15})
    ->Args({60, 5, 15})
    ->Unit(benchmark::kMicrosecond);

/// Meta-batches of 25 sinusoid tasks; range(0) threads, range(1) prefetched batches.
void BM_SinusoidMetaBatch(benchmark::State& state) {
  md::SinusoidTasks<float> family({.shots = 10, .queries = 10});
  md::MetaBatchSampler batches(family, {.batch = 25,
                                        .seed = 1,
                                        .threads = static_cast<int>(state.range(0)),
                                        .prefetch = state.range(1)});
  for (auto _ : state) {
    auto batch = batches.next();
    benchmark::DoNotOptimize(batch.data());
  }
  state.counters["tasks/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 25, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SinusoidMetaBatch)
    ->ArgNames({"threads", "prefetch"})
    ->Args({1, 0})
    ->Args({2, 0})
    ->Args({1, 2})
    ->Unit(benchmark::kMicrosecond);

/// Decodes all 1623 characters from the PNGs and writes the cache (into a fresh folder).
void BM_OmniglotLoadCold(benchmark::State& state) {
  if (!have_omniglot()) {
    state.SkipWithError("METALEARN_OMNIGLOT_DIR is not set");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / "metalearn_bench_cold_cache";
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(dir);
    state.ResumeTiming();
    md::OmniglotDataset ds({.split = md::OmniglotSplit::kAll, .cache_dir = dir});
    if (ds.loaded_from_cache()) state.SkipWithError("unexpectedly read a cache");
    benchmark::DoNotOptimize(ds.num_classes());
  }
  fs::remove_all(dir);
}
BENCHMARK(BM_OmniglotLoadCold)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

/// Loads all 1623 characters from a valid cache (built before timing if needed).
void BM_OmniglotLoadCached(benchmark::State& state) {
  if (!have_omniglot()) {
    state.SkipWithError("METALEARN_OMNIGLOT_DIR is not set");
    return;
  }
  (void)md::OmniglotDataset({.split = md::OmniglotSplit::kAll});
  for (auto _ : state) {
    md::OmniglotDataset ds({.split = md::OmniglotSplit::kAll});
    if (!ds.loaded_from_cache()) state.SkipWithError("the cache was not used");
    benchmark::DoNotOptimize(ds.num_classes());
  }
}
BENCHMARK(BM_OmniglotLoadCached)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
