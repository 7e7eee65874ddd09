// Core benchmarks: per-op overhead of the autodiff graph, GEMM throughput at the
// sizes meta-learning uses, and backward / double-backward of the sinusoid MLP.
#include <benchmark/benchmark.h>

#include <metalearn/metalearn.hpp>
#include <metalearn/tensor/gemm.hpp>
#include <string>
#include <vector>

#include "metalearn/core/eigen.hpp"

namespace ml = metalearn;
namespace ag = metalearn::autograd;

namespace {

// A chain of `n` small elementwise ops on a 4-element tensor, forward + backward.
// Reported as time per node (forward and backward of one op).
void BM_OpChainForwardBackward(benchmark::State& state) {
  const auto n = state.range(0);
  ml::Generator gen(1);
  auto x = ml::randn<float>({4}, gen).requires_grad(true);
  for (auto _ : state) {
    ml::Tensor<float> y = x;
    for (int64_t i = 0; i < n; ++i) y = ml::mul_scalar(ml::add_scalar(y, 0.001f), 0.999f);
    auto g = ag::grad({ml::sum(y)}, {x});
    benchmark::DoNotOptimize(g[0].data());
  }
  const double nodes = 2.0 * static_cast<double>(n);
  state.counters["ns_per_node"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * nodes,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_OpChainForwardBackward)->Arg(100)->Arg(10000);

// Forward only (graph recording) for comparison.
void BM_OpChainForwardOnly(benchmark::State& state) {
  const auto n = state.range(0);
  ml::Generator gen(1);
  auto x = ml::randn<float>({4}, gen).requires_grad(true);
  for (auto _ : state) {
    ml::Tensor<float> y = x;
    for (int64_t i = 0; i < n; ++i) y = ml::mul_scalar(ml::add_scalar(y, 0.001f), 0.999f);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["ns_per_node"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * static_cast<double>(n),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_OpChainForwardOnly)->Arg(10000);

// matmul [M, K] x [K, N] through our op (no graph).
void BM_Matmul(benchmark::State& state) {
  const auto m = state.range(0), k = state.range(1), n = state.range(2);
  ml::Generator gen(2);
  auto a = ml::randn<float>({m, k}, gen);
  auto b = ml::randn<float>({k, n}, gen);
  for (auto _ : state) {
    auto c = ml::matmul(a, b);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOPs"] = benchmark::Counter(
      2e-9 * static_cast<double>(m * k * n) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Matmul)
    ->Args({10, 40, 40})
    ->Args({250, 40, 40})
    ->Args({980, 576, 64})
    ->Args({512, 512, 512});

// The machine's GEMM peak as Eigen reaches it (float, 512^3, one thread).
void BM_EigenGemmPeak(benchmark::State& state) {
  const Eigen::Index n = 512;
  Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n), c(n, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOPs"] = benchmark::Counter(
      2e-9 * static_cast<double>(n * n * n) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EigenGemmPeak);

// The same GEMM by the convolutions' kernel (metalearn::detail::gemm: single-threaded
// OpenBLAS in the default build, see gemm_backend()).
void BM_ConvGemmPeak(benchmark::State& state) {
  const ml::Index n = 512;
  std::vector<float> a(static_cast<std::size_t>(n * n), 0.5F), b(a), c(a.size());
  for (auto _ : state) {
    ml::detail::gemm(false, false, n, n, n, a.data(), n, b.data(), n, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  state.SetLabel(std::string(ml::gemm_backend()));
  state.counters["GFLOPs"] = benchmark::Counter(
      2e-9 * static_cast<double>(n * n * n) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ConvGemmPeak);

// A forward convolution's product as ConvNet4's second layer makes it for a chunk of
// images: weights [64, 576] times the columns [576, 196 * images] (the order-keeping
// kernel takes it, packing the columns panel by panel).
void BM_ConvForwardGemm(benchmark::State& state) {
  const ml::Index m = 64, k = 576, n = 196 * state.range(0);
  std::vector<float> a(static_cast<std::size_t>(m * k), 0.5F);
  std::vector<float> b(static_cast<std::size_t>(k * n), 0.25F), c(static_cast<std::size_t>(m * n));
  for (auto _ : state) {
    ml::detail::gemm(false, false, m, n, k, a.data(), k, b.data(), n, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOPs"] = benchmark::Counter(
      2e-9 * static_cast<double>(m * n * k) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ConvForwardGemm)->Arg(1)->Arg(8);

// 1-40-40-1 ReLU MLP on 10 points: forward + MSE, then gradient w.r.t. all weights
// (first order) or gradient with create_graph followed by a Hessian-vector product
// (second order, the MAML inner-step pattern).
struct Mlp {
  ml::Tensor<float> w1, b1, w2, b2, w3, b3;
  explicit Mlp(ml::Generator& gen)
      : w1(ml::randn<float>({1, 40}, gen, 0.f, 0.5f).requires_grad(true)),
        b1(ml::zeros<float>({40}).requires_grad(true)),
        w2(ml::randn<float>({40, 40}, gen, 0.f, 0.15f).requires_grad(true)),
        b2(ml::zeros<float>({40}).requires_grad(true)),
        w3(ml::randn<float>({40, 1}, gen, 0.f, 0.15f).requires_grad(true)),
        b3(ml::zeros<float>({1}).requires_grad(true)) {}
  [[nodiscard]] std::vector<ml::Tensor<float>> params() const { return {w1, b1, w2, b2, w3, b3}; }
  [[nodiscard]] ml::Tensor<float> loss(const ml::Tensor<float>& x,
                                       const ml::Tensor<float>& y) const {
    auto h = ml::relu(ml::matmul(x, w1) + b1);
    h = ml::relu(ml::matmul(h, w2) + b2);
    return ml::mse_loss(ml::matmul(h, w3) + b3, y);
  }
};

void BM_MlpBackward(benchmark::State& state) {
  ml::Generator gen(3);
  Mlp net(gen);
  auto x = ml::uniform<float>({10, 1}, gen, -5.f, 5.f);
  auto y = ml::uniform<float>({10, 1}, gen, -1.f, 1.f);
  for (auto _ : state) {
    auto g = ag::grad({net.loss(x, y)}, net.params());
    benchmark::DoNotOptimize(g[0].data());
  }
}
BENCHMARK(BM_MlpBackward);

void BM_MlpDoubleBackward(benchmark::State& state) {
  ml::Generator gen(3);
  Mlp net(gen);
  auto x = ml::uniform<float>({10, 1}, gen, -5.f, 5.f);
  auto y = ml::uniform<float>({10, 1}, gen, -1.f, 1.f);
  const auto params = net.params();
  for (auto _ : state) {
    auto g = ag::grad({net.loss(x, y)}, params, {.create_graph = true});
    ml::Tensor<float> dot;
    for (const auto& gi : g) dot = dot.defined() ? dot + ml::sum(gi * gi) : ml::sum(gi * gi);
    auto h = ag::grad({dot}, params);
    benchmark::DoNotOptimize(h[0].data());
  }
}
BENCHMARK(BM_MlpDoubleBackward);

}  // namespace

BENCHMARK_MAIN();
