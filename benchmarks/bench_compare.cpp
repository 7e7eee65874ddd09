// Side-by-side comparison with PyTorch: the metalearn half.
//
// The workloads here are the ones of benchmarks/pytorch/workloads.py, built with the
// library's public API (algorithms::Maml, nn::MLP, nn::ConvNet4, data samplers,
// optim::Adam), so the numbers are what a user of the library gets.
//
//   bench_compare list
//       prints the workload names
//   bench_compare time <workload> <threads> <min_iters> <min_seconds> [max_seconds]
//       one JSON line: per-step wall times in ms, RSS before the first step and the
//       peak RSS over the steps (the peak is reset through /proc/self/clear_refs
//       after set-up, so it covers the steps only)
//   bench_compare dump <workload> <file>
//       writes the initial meta-parameters, the task batch and the meta-gradient of
//       that batch to <file> (format below) for the gradient-agreement check
//   bench_compare [--benchmark_* flags]
//       the same workloads as Google Benchmark cases
//
// Dump format (little endian): the 8 bytes "MLCMP001", a uint32 record count, then
// per record: uint32 name length, the name, uint32 rank, int64 dims[rank], float32
// values[numel]. Records: "param.<i>.<name>" (meta-parameters in order),
// "task.<t>.{support_x,support_y,query_x,query_y}" and "grad.<i>" (the gradient of
// the mean query loss over the batch; for Reptile the mean of theta - phi).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <metalearn/metalearn.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;
using ml::Index;
using ml::Tensor;

namespace {

// ---- workloads ----------------------------------------------------------------------

/// One workload: a model, a fixed task batch and a training step on it.
class Runner {
 public:
  virtual ~Runner() = default;
  /// One full training step (meta-gradient and outer update).
  virtual void step() = 0;
  /// The gradient the step applies, without updating anything.
  [[nodiscard]] virtual std::vector<Tensor<float>> gradient() = 0;
  /// Meta-parameters in the order of gradient().
  [[nodiscard]] virtual ml::nn::ParamDict<float> parameters() const = 0;
  [[nodiscard]] const ml::data::TaskBatch<float>& batch() const { return batch_; }

 protected:
  ml::data::TaskBatch<float> batch_;
};

/// MAML (any order, any model) through algorithms::Maml.
class MamlRunner : public Runner {
 public:
  MamlRunner(std::unique_ptr<ml::nn::Module<float>> model, const alg::MamlOptions<float>& options,
             ml::data::TaskBatch<float> batch)
      : model_(std::move(model)), maml_(*model_, options) {
    batch_ = std::move(batch);
  }
  void step() override { benchmark::DoNotOptimize(maml_.meta_step(batch_).meta_loss); }
  std::vector<Tensor<float>> gradient() override { return maml_.meta_gradient(batch_); }
  [[nodiscard]] ml::nn::ParamDict<float> parameters() const override {
    return maml_.meta_parameters();
  }

 private:
  std::unique_ptr<ml::nn::Module<float>> model_;
  alg::Maml<float> maml_;
};

/// Reptile: `steps` plain SGD steps on each task's support set from theta; the outer
/// gradient is the mean of theta - phi over the batch, applied by Adam. Written with
/// the nn/optim API (algorithms/reptile.hpp does not exist yet).
class ReptileRunner : public Runner {
 public:
  ReptileRunner(std::unique_ptr<ml::nn::Module<float>> model, int steps, float inner_lr,
                float outer_lr, int threads, ml::data::TaskBatch<float> batch)
      : model_(std::move(model)),
        steps_(steps),
        inner_lr_(inner_lr),
        adam_(model_->parameters(), ml::optim::AdamOptions{}.lr(outer_lr)),
        pool_(static_cast<std::size_t>(threads)) {
    batch_ = std::move(batch);
  }

  std::vector<Tensor<float>> gradient() override {
    const ml::nn::ParamDict<float> theta = model_->named_parameters();
    std::vector<ml::nn::ParamDict<float>> adapted(batch_.size());
    pool_.run(batch_.size(), [&](std::size_t t) {
      const auto& task = batch_[t];
      ml::nn::ParamDict<float> fast = theta;
      for (int k = 0; k < steps_; ++k) {
        Tensor<float> loss = ml::mse_loss(model_->forward(task.support_x, fast), task.support_y);
        const auto grads = ml::autograd::grad({loss}, fast.values());
        ml::autograd::NoGradGuard no_grad;
        std::vector<Tensor<float>> next = ml::optim::sgd_update(fast, grads, inner_lr_).values();
        for (auto& v : next) v.requires_grad(true);
        fast = fast.with_values(std::move(next));
      }
      adapted[t] = std::move(fast);
    });
    // theta - mean(phi), reduced in task order.
    ml::autograd::NoGradGuard no_grad;
    const std::vector<Tensor<float>> base = theta.values();
    std::vector<Tensor<float>> out;
    const float scale = 1.0f / static_cast<float>(batch_.size());
    for (std::size_t j = 0; j < base.size(); ++j) {
      Tensor<float> sum = adapted[0].values()[j];
      for (std::size_t t = 1; t < adapted.size(); ++t) sum = ml::add(sum, adapted[t].values()[j]);
      out.push_back(ml::sub(base[j].detach(), ml::mul_scalar(sum, scale)));
    }
    return out;
  }

  void step() override {
    const auto grads = gradient();
    const auto params = model_->parameters();
    for (std::size_t j = 0; j < params.size(); ++j) params[j].set_grad(grads[j]);
    adam_.step();
    adam_.zero_grad();
  }
  [[nodiscard]] ml::nn::ParamDict<float> parameters() const override {
    return model_->named_parameters();
  }

 private:
  std::unique_ptr<ml::nn::Module<float>> model_;
  int steps_;
  float inner_lr_;
  ml::optim::Adam<float> adam_;
  ml::ThreadPool pool_;
};

/// One prototypical-network training episode: embed support and query images in one
/// batch, prototypes = class means of the support embeddings (a one-hot matrix
/// product, the support rows are shuffled), logits = -squared distances, cross
/// entropy, backward, Adam. Written with ops (algorithms/protonet.hpp does not exist
/// yet).
class ProtoRunner : public Runner {
 public:
  ProtoRunner(std::unique_ptr<ml::nn::ConvNet4<float>> model, ml::data::Task<float> episode)
      : model_(std::move(model)), adam_(model_->parameters(), ml::optim::AdamOptions{}.lr(1e-3)) {
    batch_.push_back(std::move(episode));
    const auto& task = batch_[0];
    const Index ns = task.support_y.numel();
    std::vector<float> onehot(static_cast<std::size_t>(task.ways * ns), 0.0f);
    for (Index i = 0; i < ns; ++i) {
      const auto c = static_cast<Index>(task.support_y.data()[i]);
      onehot[static_cast<std::size_t>(c * ns + i)] = 1.0f / static_cast<float>(task.shots);
    }
    averaging_ = ml::from_vector<float>(onehot, {task.ways, ns});
    images_ = ml::concat<float>({task.support_x, task.query_x}, 0);
  }

  Tensor<float> loss() const {
    const auto& task = batch_[0];
    const Index ns = task.support_y.numel();
    Tensor<float> emb = model_->forward(images_);
    Tensor<float> protos = ml::mm(averaging_, ml::slice(emb, 0, 0, ns), false, false);
    Tensor<float> query = ml::slice(emb, 0, ns, emb.size(0));
    return ml::cross_entropy(ml::neg(ml::pairwise_sq_dist(query, protos)), task.query_y);
  }
  std::vector<Tensor<float>> gradient() override {
    return ml::autograd::grad({loss()}, model_->parameters());
  }
  void step() override {
    loss().backward();
    adam_.step();
    adam_.zero_grad();
  }
  [[nodiscard]] ml::nn::ParamDict<float> parameters() const override {
    return model_->named_parameters();
  }

 private:
  std::unique_ptr<ml::nn::ConvNet4<float>> model_;
  ml::optim::Adam<float> adam_;
  Tensor<float> averaging_;
  Tensor<float> images_;
};

// ---- the workload table -------------------------------------------------------------

constexpr std::uint64_t kSeed = 7;

ml::data::TaskBatch<float> sinusoid_batch() {
  ml::data::SinusoidTasks<float> family({.shots = 10, .queries = 10});
  ml::data::MetaBatchSampler<float> batches(family, {.batch = 25, .seed = kSeed});
  return batches.next();
}

ml::data::TaskBatch<float> glyph_batch(Index batch, Index ways, Index shots, Index queries) {
  auto glyphs = std::make_shared<ml::data::ProceduralGlyphs>();
  ml::data::EpisodicSampler<float> episodes(glyphs,
                                            {.ways = ways, .shots = shots, .queries = queries});
  ml::data::MetaBatchSampler<float> batches(episodes, {.batch = batch, .seed = kSeed});
  return batches.next();
}

/// TorchBench's maml_omniglot network: three unpadded [conv 3x3, batch norm, ReLU,
/// 2x2 max-pool] blocks (28 -> 13 -> 5 -> 1), flatten, Linear(64, 5).
std::unique_ptr<ml::nn::Module<float>> torchbench_net(ml::Generator& gen) {
  auto net = std::make_unique<ml::nn::Sequential<float>>();
  Index in = 1;
  for (int b = 0; b < 3; ++b) {
    net->push_back(std::make_shared<ml::nn::Conv2d<float>>(in, 64, 3, gen, 1, 0));
    net->push_back(std::make_shared<ml::nn::BatchNorm2d<float>>(64));
    net->push_back(std::make_shared<ml::nn::ReLU<float>>());
    net->push_back(std::make_shared<ml::nn::MaxPool2d<float>>(2));
    in = 64;
  }
  net->push_back(std::make_shared<ml::nn::Flatten<float>>());
  net->push_back(std::make_shared<ml::nn::Linear<float>>(64, 5, gen));
  return net;
}

using Factory = std::function<std::unique_ptr<Runner>(int threads)>;

const std::vector<std::pair<std::string, Factory>>& workloads() {
  static const std::vector<std::pair<std::string, Factory>> table = {
      {"sinusoid_maml2",
       [](int threads) {
         ml::Generator gen(kSeed);
         return std::make_unique<MamlRunner>(
             std::make_unique<ml::nn::MLP<float>>(std::vector<Index>{1, 40, 40, 1}, gen),
             alg::MamlOptions<float>{}.inner_lr(0.01f).inner_steps(1).outer_lr(1e-3f).threads(
                 threads),
             sinusoid_batch());
       }},
      {"sinusoid_maml1",
       [](int threads) {
         ml::Generator gen(kSeed);
         return std::make_unique<MamlRunner>(
             std::make_unique<ml::nn::MLP<float>>(std::vector<Index>{1, 40, 40, 1}, gen),
             alg::MamlOptions<float>{}
                 .inner_lr(0.01f)
                 .inner_steps(1)
                 .first_order(true)
                 .outer_lr(1e-3f)
                 .threads(threads),
             sinusoid_batch());
       }},
      {"sinusoid_reptile5",
       [](int threads) {
         ml::Generator gen(kSeed);
         return std::make_unique<ReptileRunner>(
             std::make_unique<ml::nn::MLP<float>>(std::vector<Index>{1, 40, 40, 1}, gen), 5, 0.01f,
             1e-3f, threads, sinusoid_batch());
       }},
      {"omniglot_maml_paper",
       [](int threads) {
         ml::Generator gen(kSeed);
         return std::make_unique<MamlRunner>(
             std::make_unique<ml::nn::ConvNet4<float>>(ml::nn::ConvNet4Options{}.ways(5), gen),
             alg::MamlOptions<float>{}
                 .loss(alg::LossKind::kCrossEntropy)
                 .inner_lr(0.4f)
                 .inner_steps(1)
                 .outer_lr(1e-3f)
                 .threads(threads),
             glyph_batch(32, 5, 1, 1));
       }},
      {"omniglot_maml_torchbench",
       [](int threads) {
         ml::Generator gen(kSeed);
         return std::make_unique<MamlRunner>(torchbench_net(gen),
                                             alg::MamlOptions<float>{}
                                                 .loss(alg::LossKind::kCrossEntropy)
                                                 .inner_lr(0.1f)
                                                 .inner_steps(5)
                                                 .outer_lr(1e-3f)
                                                 .threads(threads),
                                             glyph_batch(5, 5, 5, 15));
       }},
      {"protonet_60w5s",
       [](int /*threads*/) {
         ml::Generator gen(kSeed);
         return std::make_unique<ProtoRunner>(
             std::make_unique<ml::nn::ConvNet4<float>>(ml::nn::ConvNet4Options{}, gen),
             glyph_batch(1, 60, 5, 5)[0]);
       }},
      {"protonet_5w1s",
       [](int /*threads*/) {
         ml::Generator gen(kSeed);
         return std::make_unique<ProtoRunner>(
             std::make_unique<ml::nn::ConvNet4<float>>(ml::nn::ConvNet4Options{}, gen),
             glyph_batch(1, 5, 1, 15)[0]);
       }},
  };
  return table;
}

const Factory& find_workload(const std::string& name) {
  for (const auto& [n, f] : workloads()) {
    if (n == name) return f;
  }
  throw ml::ValueError("bench_compare: unknown workload '" + name + "' (try: bench_compare list)");
}

// ---- process memory -------------------------------------------------------------------

/// A "VmRSS"/"VmHWM" line of /proc/self/status in kB (-1 when unavailable).
long status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, n, key) == 0 && line.size() > n && line[n] == ':') {
      return std::stol(line.substr(n + 1));
    }
  }
  return -1;
}

/// Resets the kernel's peak-RSS mark (VmHWM) to the current RSS.
bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

// ---- modes ------------------------------------------------------------------------------

int run_time(const std::string& name, int threads, int min_iters, double min_seconds,
             double max_seconds) {
  auto runner = find_workload(name)(threads);
  const long rss_before = status_kb("VmRSS");
  const bool reset = reset_peak_rss();
  runner->step();  // warm-up (allocator, caches); part of the memory peak
  std::vector<double> ms;
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    runner->step();
    const auto t1 = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    const double total = std::chrono::duration<double>(t1 - start).count();
    const int n = static_cast<int>(ms.size());
    if ((n >= min_iters && total >= min_seconds) || (n >= 2 && total >= max_seconds)) break;
  }
  std::ostringstream os;
  os.precision(6);
  os << "{\"side\": \"metalearn\", \"workload\": \"" << name << "\", \"threads\": " << threads
     << ", \"rss_before_kb\": " << rss_before << ", \"rss_peak_kb\": " << status_kb("VmHWM")
     << ", \"peak_reset\": " << (reset ? "true" : "false") << ", \"ms\": [";
  for (std::size_t i = 0; i < ms.size(); ++i) os << (i ? ", " : "") << ms[i];
  os << "]}";
  std::cout << os.str() << std::endl;
  return 0;
}

void write_record(std::ofstream& out, const std::string& name, const Tensor<float>& t) {
  const auto len = static_cast<std::uint32_t>(name.size());
  out.write(reinterpret_cast<const char*>(&len), sizeof len);
  out.write(name.data(), static_cast<std::streamsize>(name.size()));
  const auto rank = static_cast<std::uint32_t>(t.dim());
  out.write(reinterpret_cast<const char*>(&rank), sizeof rank);
  for (Index d = 0; d < t.dim(); ++d) {
    const std::int64_t v = t.size(d);
    out.write(reinterpret_cast<const char*>(&v), sizeof v);
  }
  out.write(reinterpret_cast<const char*>(t.data()),
            static_cast<std::streamsize>(sizeof(float) * static_cast<std::size_t>(t.numel())));
}

int run_dump(const std::string& name, const std::string& path) {
  auto runner = find_workload(name)(1);
  const auto params = runner->parameters();
  const auto grads = runner->gradient();
  std::vector<std::pair<std::string, Tensor<float>>> records;
  for (std::size_t i = 0; i < params.size(); ++i) {
    records.emplace_back("param." + std::to_string(i) + "." + params.names()[i],
                         params.values()[i].detach());
  }
  const auto& batch = runner->batch();
  for (std::size_t t = 0; t < batch.size(); ++t) {
    const std::string p = "task." + std::to_string(t) + ".";
    records.emplace_back(p + "support_x", batch[t].support_x);
    records.emplace_back(p + "support_y", batch[t].support_y);
    records.emplace_back(p + "query_x", batch[t].query_x);
    records.emplace_back(p + "query_y", batch[t].query_y);
  }
  for (std::size_t i = 0; i < grads.size(); ++i) {
    records.emplace_back("grad." + std::to_string(i), grads[i].detach());
  }
  std::ofstream out(path, std::ios::binary);
  if (!out) throw ml::IoError("bench_compare dump: cannot open '" + path + "' for writing");
  out.write("MLCMP001", 8);
  const auto count = static_cast<std::uint32_t>(records.size());
  out.write(reinterpret_cast<const char*>(&count), sizeof count);
  for (const auto& [n, t] : records) write_record(out, n, t);
  if (!out) throw ml::IoError("bench_compare dump: write to '" + path + "' failed");
  return 0;
}

// ---- Google Benchmark cases -----------------------------------------------------------

void BM_Compare(benchmark::State& state, const std::string& name) {
  const int threads = static_cast<int>(state.range(0));
  auto runner = find_workload(name)(threads);
  runner->step();
  for (auto _ : state) runner->step();
  state.counters["steps/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void register_benchmarks() {
  for (const auto& [name, factory] : workloads()) {
    benchmark::RegisterBenchmark(("BM_Compare/" + name).c_str(),
                                 [name](benchmark::State& s) { BM_Compare(s, name); })
        ->ArgName("threads")
        ->Arg(1)
        ->Arg(2)
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "list") {
      for (const auto& [name, f] : workloads()) std::cout << name << "\n";
      return 0;
    }
    if (mode == "time" && (argc == 6 || argc == 7)) {
      return run_time(argv[2], std::stoi(argv[3]), std::stoi(argv[4]), std::stod(argv[5]),
                      argc == 7 ? std::stod(argv[6]) : 1e9);
    }
    if (mode == "dump" && argc == 4) return run_dump(argv[2], argv[3]);
    if (mode == "time" || mode == "dump") {
      std::cerr << "usage: bench_compare list | time <workload> <threads> <min_iters> "
                   "<min_seconds> [max_seconds] | dump <workload> <file>\n";
      return 2;
    }
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  register_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
