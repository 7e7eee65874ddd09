// RL^2: the speed of collecting trials (environment steps per second) and of one PPO
// update (4 epochs x 4 minibatches, back-propagation through whole trials) of the
// paper's agent (GRU 256) on 5-arm Bernoulli bandits of 10 pulls, 128 trials per
// meta-step, and dumps of a fixed batch for the PyTorch twin
// (benchmarks/pytorch/rl2_twin.py):
//
//   bench_rl2 dump <file.safetensors>      float64, bandits: the parameters after one
//                                          meta-step, the trials of meta-step 0 with their
//                                          advantages and returns, and the gradient of
//                                          the PPO loss over all of them at those parameters
//   bench_rl2 dump-mdp <file.safetensors>  the same on small tabular MDPs (3 states, 2
//                                          actions, 2 episodes of 3 steps per trial)
//   bench_rl2 time [seconds] [chunk] [collect_chunk]
//                                          float32 at one thread: collection steps/s,
//                                          seconds per update and the peak resident memory,
//                                          the workload of `rl2_twin.py time` (chunk and
//                                          collect_chunk: Rl2Options', default 16 and 64)
//   bench_rl2 [--benchmark_* flags]        the Google Benchmark cases

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;
namespace me = metalearn::env;

namespace {

constexpr std::uint64_t kSeed = 13;

me::BernoulliBandits paper_bandits() {
  return me::BernoulliBandits({.arms = 5, .pulls = 10});
}

// The paper's agent with the reproduce scripts' PPO settings.
alg::Rl2Options paper_options(int threads) {
  return alg::Rl2Options{
      .hidden = 256, .trials = 128, .lr = 1e-3, .threads = threads, .seed = kSeed};
}

// One array of the batch as a [trials, steps] tensor.
template <class V>
ml::Tensor<double> as_tensor(const V& values, const alg::TrialBatch& batch) {
  std::vector<double> out(values.begin(), values.end());
  return ml::from_vector<double>(out, ml::Shape{batch.trials, batch.steps()});
}

template <class F>
int run_dump(const std::string& path, F family, alg::Rl2Options options) {
  ml::Generator gen(kSeed);
  alg::Rl2<F, double> rl2(family, gen, options);
  const alg::TrialBatch batch = rl2.collect_step(0);
  (void)rl2.update(batch);  // the ratios now differ from one, and some are clipped
  const ml::nn::ParamDict<double> params = rl2.meta_parameters();
  const auto [adv, ret] = rl2.advantages(batch);
  std::vector<ml::Index> all(static_cast<std::size_t>(batch.trials));
  for (ml::Index m = 0; m < batch.trials; ++m) all[static_cast<std::size_t>(m)] = m;
  const alg::TrialOutputs<double> out = rl2.trial_outputs(batch, all, params);
  alg::PpoTargets targets;  // rows t * trials + m, as trial_outputs orders them
  for (ml::Index t = 0; t < batch.steps(); ++t) {
    for (ml::Index m = 0; m < batch.trials; ++m) {
      const std::size_t k = batch.at(m, t);
      targets.actions.push_back(batch.actions[k]);
      targets.old_log_probs.push_back(batch.log_probs[k]);
      targets.advantages.push_back(adv[k]);
      targets.returns.push_back(ret[k]);
    }
  }
  const alg::Rl2Options& o = rl2.options();
  const auto loss =
      alg::ppo_loss(out.logits, out.values, targets, {o.clip, o.value_coef, o.entropy_coef},
                    1.0 / static_cast<double>(batch.trials * batch.steps()));
  const auto grads = ml::autograd::grad({loss.loss}, params.values());
  ml::nn::ParamDict<double> dump;
  std::size_t j = 0;
  for (const auto& [name, t] : params) {
    dump.insert("param." + std::string(name), t);
    dump.insert("grad." + std::string(name), grads[j++]);
  }
  dump.insert("batch.observations", as_tensor(batch.observations, batch));
  dump.insert("batch.actions", as_tensor(batch.actions, batch));
  dump.insert("batch.rewards", as_tensor(batch.rewards, batch));
  dump.insert("batch.dones", as_tensor(batch.dones, batch));
  dump.insert("batch.log_probs", as_tensor(batch.log_probs, batch));
  dump.insert("batch.values", as_tensor(batch.values, batch));
  dump.insert("batch.advantages", as_tensor(adv, batch));
  dump.insert("batch.returns", as_tensor(ret, batch));
  const std::string value = fmt::format("{:.17g}", loss.loss.item());
  ml::io::save_safetensors(path, dump,
                           {{"observations", std::to_string(batch.spec.observations)},
                            {"actions", std::to_string(batch.spec.actions)},
                            {"gamma", fmt::format("{:.17g}", o.gamma)},
                            {"gae_lambda", fmt::format("{:.17g}", o.gae_lambda)},
                            {"clip", fmt::format("{:.17g}", o.clip)},
                            {"value_coef", fmt::format("{:.17g}", o.value_coef)},
                            {"entropy_coef", fmt::format("{:.17g}", o.entropy_coef)},
                            {"normalize_advantages", o.normalize_advantages ? "1" : "0"},
                            {"clipped_rows", fmt::format("{}", loss.clipped)},
                            {"loss", value}});
  fmt::print("wrote {}: {} trials of {} steps, {} of {} rows clipped, loss {}\n", path,
             batch.trials, batch.steps(), loss.clipped, batch.trials * batch.steps(), value);
  return 0;
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux
}

int run_time(double seconds, ml::Index chunk, ml::Index collect_chunk) {
  using clock = std::chrono::steady_clock;
  const auto elapsed = [](clock::time_point t0) {
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  ml::Generator gen(kSeed);
  alg::Rl2Options options = paper_options(1);
  options.chunk = chunk;
  options.collect_chunk = collect_chunk;
  alg::Rl2<me::BernoulliBandits, float> rl2(paper_bandits(), gen, options);
  (void)rl2.meta_step();  // warm-up
  std::int64_t k = 1;
  auto t0 = clock::now();
  std::int64_t steps = 0;
  while (elapsed(t0) < seconds) {
    const alg::TrialBatch b = rl2.collect_step(k++);
    steps += b.trials * b.steps();
  }
  const double collect_rate = static_cast<double>(steps) / elapsed(t0);
  const alg::TrialBatch batch = rl2.collect_step(0);
  int updates = 0;
  t0 = clock::now();
  while (elapsed(t0) < seconds) {
    (void)rl2.update(batch);
    ++updates;
  }
  const double per_update = elapsed(t0) / updates;
  fmt::print(
      "metalearn, 1 thread, chunk {}, collect_chunk {}: collection {:.0f} environment steps/s; "
      "PPO update {:.4f} s (4 epochs x 4 minibatches of 128 trials x 10 steps, GRU 256); peak "
      "RSS {:.1f} MiB\n",
      chunk, collect_chunk, collect_rate, per_update, peak_rss_mib());
  return 0;
}

void BM_Rl2Collect(benchmark::State& state) {
  ml::Generator gen(kSeed);
  alg::Rl2<me::BernoulliBandits, float> rl2(paper_bandits(), gen,
                                            paper_options(static_cast<int>(state.range(0))));
  std::int64_t k = 0;
  std::int64_t steps = 0;
  for (auto _ : state) {
    const alg::TrialBatch b = rl2.collect_step(k++);
    steps += b.trials * b.steps();
    benchmark::DoNotOptimize(b.rewards.data());
  }
  state.counters["env_steps/s"] =
      benchmark::Counter(static_cast<double>(steps), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Rl2Collect)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

void BM_Rl2Update(benchmark::State& state) {
  ml::Generator gen(kSeed);
  alg::Rl2<me::BernoulliBandits, float> rl2(paper_bandits(), gen,
                                            paper_options(static_cast<int>(state.range(0))));
  const alg::TrialBatch batch = rl2.collect_step(0);
  for (auto _ : state) benchmark::DoNotOptimize(rl2.update(batch).meta_loss);
}
BENCHMARK(BM_Rl2Update)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string command = argc >= 2 ? argv[1] : "";
    if (command == "dump" || command == "dump-mdp") {
      if (argc != 3) {
        fmt::print(stderr, "usage: bench_rl2 {} <file.safetensors>\n", command);
        return 2;
      }
      // Small sizes keep the float64 check quick; the computation is the paper agent's.
      const alg::Rl2Options small{.hidden = 32, .trials = 16, .lr = 1e-2, .seed = kSeed};
      if (command == "dump") return run_dump(argv[2], paper_bandits(), small);
      return run_dump(argv[2],
                      me::TabularMdps({.states = 3, .actions = 2, .horizon = 3, .episodes = 2}),
                      small);
    }
    if (command == "time") {
      return run_time(argc >= 3 ? std::stod(argv[2]) : 10.0,
                      argc >= 4 ? std::stol(argv[3]) : alg::Rl2Options{}.chunk,
                      argc >= 5 ? std::stol(argv[4]) : alg::Rl2Options{}.collect_chunk);
    }
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
