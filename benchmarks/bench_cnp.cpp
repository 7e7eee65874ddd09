// Neural Processes: one meta-step (meta-gradient of a batch of Gaussian-process tasks +
// Adam) of the Conditional Neural Process with the reference sizes (encoder 4 x 128,
// decoder 2 x 128), and dumps of a fixed batch for the PyTorch twin
// (benchmarks/pytorch/cnp_twin.py):
//
//   bench_cnp dump <file.safetensors>     CNP: parameters, tasks, float64 meta-gradient
//   bench_cnp dump-np <file.safetensors>  latent NP (reference sizes): the same, with the
//                                         noise of each task's posterior sample
//   bench_cnp dump-anp <file.safetensors> ANP (8 heads, self-attention): the same
//   bench_cnp [--benchmark_* flags]       the timing cases
//
// The workload: 16 tasks per meta-batch, each with 3-50 context points and 3-50 further
// target points (the targets include the context), x and y in R^1.

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <metalearn/metalearn.hpp>
#include <string>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;

namespace {

constexpr std::uint64_t kSeed = 11;

template <class T>
ml::data::TaskBatch<T> workload_batch(int tasks) {
  ml::data::GaussianProcessTasks<T> gp({.targets_include_context = true});
  ml::data::MetaBatchSampler<T> batches(gp, {.batch = tasks, .seed = kSeed});
  return batches.next();
}

int run_dump(const std::string& path) {
  ml::Generator gen(kSeed);
  alg::ConditionalNeuralProcess<double> cnp(1, 1, gen);
  const ml::data::TaskBatch<double> batch = workload_batch<double>(16);
  const alg::MetaGradient<double> g = cnp.meta_gradient(batch);
  ml::nn::ParamDict<double> out;
  for (const auto& [name, t] : cnp.meta_parameters()) out.insert("param." + std::string(name), t);
  const auto mean = g.mean();
  std::size_t j = 0;
  for (const auto& [name, t] : g.sum) out.insert("grad." + std::string(name), mean[j++]);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const std::string p = "task" + std::to_string(i) + ".";
    out.insert(p + "support_x", batch[i].support_x);
    out.insert(p + "support_y", batch[i].support_y);
    out.insert(p + "query_x", batch[i].query_x);
    out.insert(p + "query_y", batch[i].query_y);
  }
  const std::string loss = fmt::format("{:.17g}", g.stats.meta_loss);
  ml::io::save_safetensors(
      path, out, {{"tasks", std::to_string(batch.size())}, {"loss", loss}, {"sigma_floor", "0.1"}});
  fmt::print("wrote {}: {} tasks, loss {}\n", path, batch.size(), loss);
  return 0;
}

/// The ANP of the reference: 8-head cross-attention with queries and keys through a
/// 2 x 128 MLP, and here self-attention over the context too.
alg::NpOptions anp_options() {
  alg::NpOptions o;
  o.attention_heads = 8;
  o.self_attention = true;
  return o;
}

int run_dump_np(const std::string& path, bool attentive) {
  ml::Generator gen(kSeed);
  alg::NeuralProcess<double> np(1, 1, gen, attentive ? anp_options() : alg::NpOptions{});
  const ml::data::TaskBatch<double> batch = workload_batch<double>(16);
  const ml::nn::ParamDict<double> params = np.meta_parameters();
  ml::nn::ParamDict<double> out;
  for (const auto& [name, t] : params) out.insert("param." + std::string(name), t);
  ml::Generator noise(kSeed + 1);
  ml::Tensor<double> total;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto eps = ml::randn<double>({1, np.options().latent}, noise);
    const auto loss = np.loss(batch[i], params, eps);
    total = i == 0 ? loss : ml::add(total, loss);
    const std::string p = "task" + std::to_string(i) + ".";
    out.insert(p + "support_x", batch[i].support_x);
    out.insert(p + "support_y", batch[i].support_y);
    out.insert(p + "query_x", batch[i].query_x);
    out.insert(p + "query_y", batch[i].query_y);
    out.insert(p + "eps", eps);
  }
  const auto mean = ml::mul_scalar(total, 1.0 / static_cast<double>(batch.size()));
  const auto grads = ml::autograd::grad({mean}, params.values());
  std::size_t j = 0;
  for (const auto& [name, t] : params) out.insert("grad." + std::string(name), grads[j++]);
  const std::string loss = fmt::format("{:.17g}", mean.item());
  ml::io::save_safetensors(path, out,
                           {{"model", attentive ? "anp" : "np"},
                            {"heads", std::to_string(np.options().attention_heads)},
                            {"self_attention", np.options().self_attention ? "1" : "0"},
                            {"tasks", std::to_string(batch.size())},
                            {"loss", loss},
                            {"sigma_floor", "0.1"},
                            {"latent", std::to_string(np.options().latent)}});
  fmt::print("wrote {}: {} tasks, loss {}\n", path, batch.size(), loss);
  return 0;
}

void BM_CnpMetaStep(benchmark::State& state) {
  ml::Generator gen(kSeed);
  alg::ConditionalNeuralProcess<float> cnp(
      1, 1, gen, alg::CnpOptions{.threads = static_cast<int>(state.range(0))});
  const ml::data::TaskBatch<float> batch = workload_batch<float>(16);
  (void)cnp.meta_step(batch);
  for (auto _ : state) benchmark::DoNotOptimize(cnp.meta_step(batch).meta_loss);
  state.counters["steps/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CnpMetaStep)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

void BM_NpMetaStep(benchmark::State& state) {
  ml::Generator gen(kSeed);
  alg::NeuralProcess<float> np(1, 1, gen,
                               alg::NpOptions{.threads = static_cast<int>(state.range(0))});
  const ml::data::TaskBatch<float> batch = workload_batch<float>(16);
  (void)np.meta_step(batch);
  for (auto _ : state) benchmark::DoNotOptimize(np.meta_step(batch).meta_loss);
  state.counters["steps/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_NpMetaStep)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

void BM_AnpMetaStep(benchmark::State& state) {
  ml::Generator gen(kSeed);
  alg::NpOptions options = anp_options();
  options.threads = static_cast<int>(state.range(0));
  alg::NeuralProcess<float> anp(1, 1, gen, options);
  const ml::data::TaskBatch<float> batch = workload_batch<float>(16);
  (void)anp.meta_step(batch);
  for (auto _ : state) benchmark::DoNotOptimize(anp.meta_step(batch).meta_loss);
  state.counters["steps/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AnpMetaStep)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc >= 2 && std::string(argv[1]) == "dump") {
      if (argc != 3) {
        fmt::print(stderr, "usage: bench_cnp dump <file.safetensors>\n");
        return 2;
      }
      return run_dump(argv[2]);
    }
    if (argc == 3 && std::string(argv[1]) == "dump-np") return run_dump_np(argv[2], false);
    if (argc == 3 && std::string(argv[1]) == "dump-anp") return run_dump_np(argv[2], true);
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
