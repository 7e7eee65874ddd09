// ConvNet4 forward + backward on few-shot batches, against the machine's GEMM peak
// measured in the same binary (a float GEMM of 512 x 512 x 512 by the convolutions'
// own GEMM, metalearn::detail::gemm: OpenBLAS in the default build).
//
// Counters: items_per_second = images/s; FLOP/s counts the convolution GEMMs
// (forward, weight gradient, input gradient except for the first layer);
// peak_fraction = the rate of the fastest iteration / the GEMM peak (best of
// repeated 512^3 GEMMs), both wall clock, so that other load on the machine
// affects the ratio as little as possible.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <metalearn/autograd.hpp>
#include <metalearn/nn.hpp>
#include <metalearn/tensor/gemm.hpp>

#include "metalearn/core/eigen.hpp"

namespace ml = metalearn;

namespace {

using Clock = std::chrono::steady_clock;
using MatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr Eigen::Index kGemmSize = 512;

double gemm_flops() {
  return 2.0 * kGemmSize * kGemmSize * kGemmSize;
}

/// Best-of GFLOP/s of a 512^3 float GEMM, measured once per process (~0.3 s).
double gemm_peak_flops() {
  static const double peak = [] {
    MatrixF a = MatrixF::Random(kGemmSize, kGemmSize);
    MatrixF b = MatrixF::Random(kGemmSize, kGemmSize);
    MatrixF c(kGemmSize, kGemmSize);
    double best = 0.0;
    const auto until = Clock::now() + std::chrono::milliseconds(300);
    while (Clock::now() < until) {
      const auto t0 = Clock::now();
      ml::detail::gemm(false, false, kGemmSize, kGemmSize, kGemmSize, a.data(), kGemmSize, b.data(),
                       kGemmSize, c.data(), kGemmSize);
      benchmark::DoNotOptimize(c.data());
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      best = std::max(best, gemm_flops() / s);
    }
    return best;
  }();
  return peak;
}

void BM_EigenGemm512(benchmark::State& state) {
  MatrixF a = MatrixF::Random(kGemmSize, kGemmSize);
  MatrixF b = MatrixF::Random(kGemmSize, kGemmSize);
  MatrixF c(kGemmSize, kGemmSize);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(gemm_flops(), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_EigenGemm512)->Unit(benchmark::kMillisecond);

/// GEMM FLOPs of one ConvNet4 forward + backward on n images of size s x s.
double convnet_flops(ml::Index n, ml::Index in_channels, ml::Index hidden, ml::Index s) {
  double total = 0.0;
  ml::Index c = in_channels;
  for (int b = 0; b < 4; ++b) {
    const double fwd = 2.0 * static_cast<double>(n * hidden * c * 9 * s * s);
    total += fwd /*forward*/ + fwd /*weight grad*/ + (b > 0 ? fwd : 0.0) /*input grad*/;
    c = hidden;
    s /= 2;
  }
  return total;
}

/// Forward + backward (gradients of all parameters) of ConvNet4(hidden 64) on
/// `images` 1x28x28 images, with a `ways`-way head (0: no head).
void convnet_step(benchmark::State& state, ml::Index images, ml::Index ways) {
  ml::Generator gen(0);
  ml::nn::ConvNet4<float> net(ml::nn::ConvNet4Options{.ways = ways}, gen);
  auto x = ml::randn<float>(ml::Shape{images, 1, 28, 28}, gen);
  const auto params = net.named_parameters();
  const auto leaves = params.values();
  const double peak = gemm_peak_flops();
  const double flops = convnet_flops(images, 1, 64, 28);
  double best = 1e30;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    auto out = net.forward(x, params);
    auto grads = ml::autograd::grad({ml::sum(out)}, leaves);
    benchmark::DoNotOptimize(grads.front().data());
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * images);
  state.counters["FLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  // Best iteration against the best GEMM run: robust to other load on the machine.
  state.counters["peak_fraction"] = flops / best / peak;
  state.counters["gemm_peak_GFLOP/s"] = peak / 1e9;
}

void BM_ConvNet4_Maml5Way1Shot_Support(benchmark::State& state) {
  convnet_step(state, 5, 5);
}
void BM_ConvNet4_Maml5Way1Shot_Query(benchmark::State& state) {
  convnet_step(state, 75, 5);
}
void BM_ConvNet4_ProtoNet60Way5Shot(benchmark::State& state) {
  convnet_step(state, 600, 0);
}

BENCHMARK(BM_ConvNet4_Maml5Way1Shot_Support)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ConvNet4_Maml5Way1Shot_Query)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ConvNet4_ProtoNet60Way5Shot)->Unit(benchmark::kMillisecond);

}  // namespace
BENCHMARK_MAIN();
