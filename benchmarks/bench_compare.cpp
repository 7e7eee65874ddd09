// Side-by-side comparison with PyTorch: the metalearn half.
//
// The workloads here are the ones of benchmarks/pytorch/workloads.py, built with the
// library's public API (algorithms::Maml, Reptile, ProtoNet, MatchingNet, nn::MLP, nn::ConvNet4,
// data samplers), so the numbers are what a user of the library gets. The sinusoid
// MAML workloads run with MamlOptions::batch_tasks (the meta-batch as one graph, the
// library's fastest form for an MLP, as the batched PyTorch form is PyTorch's);
// Reptile likewise (ReptileOptions::batch_tasks). sinusoid_maml2_loop,
// sinusoid_maml1_loop and sinusoid_reptile5_loop time the per-task loop (with
// threads() tasks in parallel) for reference.
//
//   bench_compare list
//       prints the workload names
//   bench_compare time <workload> <threads> <min_iters> <min_seconds> [max_seconds]
//       one JSON line: per-step wall times in ms, RSS before the first step and the
//       peak RSS over the steps (the peak is reset through /proc/self/clear_refs
//       after set-up, so it covers the steps only)
//   bench_compare dump <workload> <file> [f32|f64 [<inputs>]]
//       writes the initial meta-parameters, the task batch and the meta-gradient of
//       that batch to <file> (format below) for the gradient-agreement check; with
//       f64 the same workload runs in double precision. With <inputs> (a dump of either
//       precision, e.g. one whose inputs workloads.py moved away from max-pool ties) the
//       meta-parameters and the batch's tensors are those of <inputs>, converted to the
//       precision of the run, and the gradient is the one at those values
//   bench_compare [--benchmark_* flags]
//       the same workloads as Google Benchmark cases
//
// Dump format (little endian): the 8 bytes "MLCMP032" (float32 values) or "MLCMP064"
// (float64), a uint32 record count, then per record: uint32 name length, the name,
// uint32 rank, int64 dims[rank], values[numel]. Records: "param.<i>.<name>" (meta-parameters in
// order), "task.<t>.{support_x,support_y,query_x,query_y}" and "grad.<i>" (the gradient of the mean
// query loss over the batch; for Reptile the mean of theta - phi). An inputs file needs the
// "param." and "task." records only.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <metalearn/metalearn.hpp>
#include <string>
#include <utility>
#include <vector>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;
using ml::Index;
using ml::Tensor;

namespace {

// ---- workloads ----------------------------------------------------------------------

/// Named tensors in file order: the contents of a dump.
template <class T>
using Records = std::vector<std::pair<std::string, Tensor<T>>>;

/// Class labels travel in the exchange files as a tensor of their values, under the
/// name a regression task's targets have ("support_y", "query_y").
template <class T>
Tensor<T> labels_as_tensor(const ml::Labels& labels) {
  std::vector<T> v(labels.begin(), labels.end());
  return ml::from_vector<T>(v);
}

template <class T>
ml::Labels labels_from_tensor(const Tensor<T>& t) {
  ml::Labels out;
  for (Index i = 0; i < t.numel(); ++i) out.push_back(static_cast<Index>(t.data()[i]));
  return out;
}

/// One workload: a model, a fixed task batch and a training step on it.
template <class T>
class Runner {
 public:
  virtual ~Runner() = default;
  /// One full training step (meta-gradient and outer update).
  virtual void step() = 0;
  /// The gradient the step applies, leaving the parameters as they were.
  [[nodiscard]] virtual std::vector<Tensor<T>> gradient() = 0;
  /// Meta-parameters in the order of gradient().
  [[nodiscard]] virtual ml::nn::ParamDict<T> parameters() const = 0;
  [[nodiscard]] const ml::data::TaskBatch<T>& batch() const { return batch_; }

  /// Sets the meta-parameters and the batch's tensors to the "param." and "task."
  /// records of a dump. Every meta-parameter and every tensor the batch holds must be
  /// there, named and shaped as this workload's own dump names and shapes them.
  void load(const Records<T>& records) {
    const auto find = [&](const std::string& name, const ml::Shape& shape) -> const Tensor<T>& {
      const auto it = std::find_if(records.begin(), records.end(),
                                   [&](const auto& r) { return r.first == name; });
      if (it == records.end()) throw ml::ValueError("bench_compare: inputs lack '" + name + "'");
      if (!(it->second.shape() == shape)) {
        throw ml::ShapeError("bench_compare: inputs' '" + name + "' has shape " +
                             it->second.shape().to_string() + ", the workload's " +
                             shape.to_string());
      }
      return it->second;
    };
    const auto params = parameters();
    const std::vector<std::string> names = params.names();
    const std::vector<Tensor<T>> values = params.values();
    ml::autograd::NoGradGuard no_grad;
    for (std::size_t i = 0; i < values.size(); ++i) {
      const Tensor<T>& v = find("param." + std::to_string(i) + "." + names[i], values[i].shape());
      std::copy_n(v.data(), v.numel(), values[i].data());
    }
    for (std::size_t t = 0; t < batch_.size(); ++t) {
      auto& task = batch_[t];
      const std::string prefix = "task." + std::to_string(t) + ".";
      for (auto [field, x] :
           {std::pair{"support_x", &task.support_x}, std::pair{"support_y", &task.support_y},
            std::pair{"query_x", &task.query_x}, std::pair{"query_y", &task.query_y}}) {
        if (x->defined()) *x = find(prefix + field, x->shape()).clone();
      }
      for (auto [field, l] : {std::pair{"support_y", &task.support_labels},
                              std::pair{"query_y", &task.query_labels}}) {
        if (!l->empty()) {
          *l = labels_from_tensor(find(prefix + field, ml::Shape{static_cast<Index>(l->size())}));
        }
      }
    }
  }

 protected:
  ml::data::TaskBatch<T> batch_;
};

/// MAML (any order, any model): algorithms::Maml.
template <class T>
class MamlRunner : public Runner<T> {
 public:
  MamlRunner(std::unique_ptr<ml::nn::Module<T>> model, const alg::MamlOptions<T>& options,
             ml::data::TaskBatch<T> batch)
      : model_(std::move(model)), maml_(*model_, options) {
    this->batch_ = std::move(batch);
  }
  void step() override { benchmark::DoNotOptimize(maml_.meta_step(this->batch_).meta_loss); }
  std::vector<Tensor<T>> gradient() override { return maml_.meta_gradient(this->batch_).mean(); }
  [[nodiscard]] ml::nn::ParamDict<T> parameters() const override { return maml_.meta_parameters(); }

 private:
  std::unique_ptr<ml::nn::Module<T>> model_;
  alg::Maml<T> maml_;
};

/// Reptile: algorithms::Reptile with plain SGD inner steps on the whole support set
/// and outer step 1, so theta <- mean(phi). Its "gradient" is theta - mean(phi).
/// The tasks carry no query set (with one, meta_step would also evaluate the query
/// loss before and after adaptation, which the PyTorch side does not do).
template <class T>
class ReptileRunner : public Runner<T> {
 public:
  ReptileRunner(std::unique_ptr<ml::nn::Module<T>> model, const alg::ReptileOptions<T>& options,
                ml::data::TaskBatch<T> batch)
      : model_(std::move(model)), reptile_(*model_, options) {
    for (auto& task : batch) {
      task.query_x = Tensor<T>();
      task.query_y = Tensor<T>();
      task.query_labels.clear();
    }
    this->batch_ = std::move(batch);
  }
  void step() override { benchmark::DoNotOptimize(reptile_.meta_step(this->batch_).meta_loss); }
  std::vector<Tensor<T>> gradient() override { return reptile_.meta_gradient(this->batch_).mean(); }
  [[nodiscard]] ml::nn::ParamDict<T> parameters() const override {
    return model_->named_parameters();
  }

 private:
  std::unique_ptr<ml::nn::Module<T>> model_;
  alg::Reptile<T> reptile_;
};

/// One prototypical-network training episode: algorithms::ProtoNet (support and
/// query embedded in one batch, class means, negative squared distances, cross
/// entropy, Adam 1e-3).
template <class T>
class ProtoRunner : public Runner<T> {
 public:
  ProtoRunner(std::unique_ptr<ml::nn::Module<T>> model, int threads, ml::data::Task<T> episode)
      : model_(std::move(model)),
        protonet_(*model_, alg::ProtoNetOptions<T>{.lr = 1e-3, .threads = threads}) {
    this->batch_.push_back(std::move(episode));
  }
  void step() override { benchmark::DoNotOptimize(protonet_.meta_step(this->batch_).meta_loss); }
  std::vector<Tensor<T>> gradient() override {
    return ml::autograd::grad({protonet_.loss(this->batch_[0])}, model_->parameters());
  }
  [[nodiscard]] ml::nn::ParamDict<T> parameters() const override {
    return model_->named_parameters();
  }

 private:
  std::unique_ptr<ml::nn::Module<T>> model_;
  alg::ProtoNet<T> protonet_;
};

/// One Matching Networks training episode: algorithms::MatchingNet (cosine
/// attention, Adam 1e-3), with full context embeddings of `fce_steps` attention
/// steps over the 64-wide ConvNet4 embedding when fce_steps > 0.
template <class T>
class MatchingRunner : public Runner<T> {
 public:
  MatchingRunner(std::unique_ptr<ml::nn::Module<T>> model, int threads, int fce_steps,
                 ml::data::Task<T> episode)
      : model_(std::move(model)), matching_(*model_, options(threads, fce_steps)) {
    this->batch_.push_back(std::move(episode));
  }
  void step() override { benchmark::DoNotOptimize(matching_.meta_step(this->batch_).meta_loss); }
  std::vector<Tensor<T>> gradient() override {
    return ml::autograd::grad({matching_.loss(this->batch_[0])},
                              matching_.meta_parameters().values());
  }
  [[nodiscard]] ml::nn::ParamDict<T> parameters() const override {
    return matching_.meta_parameters();
  }

 private:
  static alg::MatchingNetOptions<T> options(int threads, int fce_steps) {
    auto o = alg::MatchingNetOptions<T>{.lr = 1e-3, .threads = threads, .seed = kContextSeed};
    if (fce_steps > 0) {
      o.full_context_dim = 64;
      o.full_context_steps = fce_steps;
    }
    return o;
  }
  static constexpr std::uint64_t kContextSeed = 11;

  std::unique_ptr<ml::nn::Module<T>> model_;
  alg::MatchingNet<T> matching_;
};

// ---- the workload table -------------------------------------------------------------

constexpr std::uint64_t kSeed = 7;

template <class T>
ml::data::TaskBatch<T> sinusoid_batch() {
  ml::data::SinusoidTasks<T> family({.shots = 10, .queries = 10});
  ml::data::MetaBatchSampler<T> batches(family, {.batch = 25, .seed = kSeed});
  return batches.next();
}

template <class T>
ml::data::TaskBatch<T> glyph_batch(Index batch, Index ways, Index shots, Index queries) {
  auto glyphs = std::make_shared<ml::data::ProceduralGlyphs>();
  ml::data::EpisodicSampler<T> episodes(glyphs, {.ways = ways, .shots = shots, .queries = queries});
  ml::data::MetaBatchSampler<T> batches(episodes, {.batch = batch, .seed = kSeed});
  return batches.next();
}

template <class T>
std::unique_ptr<ml::nn::Module<T>> sinusoid_mlp() {
  ml::Generator gen(kSeed);
  return std::make_unique<ml::nn::MLP<T>>(std::vector<Index>{1, 40, 40, 1}, gen);
}

/// ConvNet4 with transductive batch norm (batch statistics, no running statistics).
template <class T>
std::unique_ptr<ml::nn::Module<T>> convnet4(Index ways) {
  ml::Generator gen(kSeed);
  return std::make_unique<ml::nn::ConvNet4<T>>(
      ml::nn::ConvNet4Options{
          .ways = ways,
          .batch_norm = ml::nn::BatchNormOptions{.mode = ml::nn::BatchNormMode::kTransductive}},
      gen);
}

/// TorchBench's maml_omniglot network: three unpadded [conv 3x3, batch norm, ReLU,
/// 2x2 max-pool] blocks (28 -> 13 -> 5 -> 1), flatten, Linear(64, 5).
template <class T>
std::unique_ptr<ml::nn::Module<T>> torchbench_net() {
  ml::Generator gen(kSeed);
  auto net = std::make_unique<ml::nn::Sequential<T>>();
  Index in = 1;
  for (int b = 0; b < 3; ++b) {
    net->push_back(std::make_shared<ml::nn::Conv2d<T>>(in, 64, 3, gen, 1, 0));
    net->push_back(std::make_shared<ml::nn::BatchNorm2d<T>>(64));
    net->push_back(std::make_shared<ml::nn::ReLU<T>>());
    net->push_back(std::make_shared<ml::nn::MaxPool2d<T>>(2));
    in = 64;
  }
  net->push_back(std::make_shared<ml::nn::Flatten<T>>());
  net->push_back(std::make_shared<ml::nn::Linear<T>>(64, 5, gen));
  return net;
}

template <class T>
using Factory = std::function<std::unique_ptr<Runner<T>>(int threads)>;

template <class T>
std::vector<std::pair<std::string, Factory<T>>> workloads() {
  // The workloads' MAML: SGD inner steps at `lr`, Adam 1e-3 outside; MSE unless
  // classifying.
  struct MamlConfig {
    bool classify = false;
    bool first_order = false;
    bool batch_tasks = false;
    bool within = false;
  };
  const auto maml = [](T lr, int steps, int threads, MamlConfig c) {
    return alg::MamlOptions<T>{
        .inner_lr = lr,
        .inner_steps = steps,
        .first_order = c.first_order,
        .outer_lr = T(1e-3),
        .loss = c.classify ? alg::LossKind::kCrossEntropy : alg::LossKind::kMse,
        .threads = threads,
        .threads_within_tasks = c.within,
        .batch_tasks = c.batch_tasks};
  };
  const auto reptile = [](int threads, bool batch_tasks) {
    return alg::ReptileOptions<T>{.inner_optimizer = alg::InnerOptimizer::kSgd,
                                  .inner_lr = T(0.01),
                                  .inner_steps = 5,
                                  .inner_batch = 0,
                                  .outer_step = T(1),
                                  .loss = alg::LossKind::kMse,
                                  .threads = threads,
                                  .batch_tasks = batch_tasks};
  };
  return {
      {"sinusoid_maml2",
       [=](int threads) {
         return std::make_unique<MamlRunner<T>>(sinusoid_mlp<T>(),
                                                maml(T(0.01), 1, threads, {.batch_tasks = true}),
                                                sinusoid_batch<T>());
       }},
      {"sinusoid_maml1",
       [=](int threads) {
         return std::make_unique<MamlRunner<T>>(
             sinusoid_mlp<T>(),
             maml(T(0.01), 1, threads, {.first_order = true, .batch_tasks = true}),
             sinusoid_batch<T>());
       }},
      {"sinusoid_maml2_loop",
       [=](int threads) {
         return std::make_unique<MamlRunner<T>>(sinusoid_mlp<T>(), maml(T(0.01), 1, threads, {}),
                                                sinusoid_batch<T>());
       }},
      {"sinusoid_maml1_loop",
       [=](int threads) {
         return std::make_unique<MamlRunner<T>>(sinusoid_mlp<T>(),
                                                maml(T(0.01), 1, threads, {.first_order = true}),
                                                sinusoid_batch<T>());
       }},
      {"sinusoid_reptile5",
       [=](int threads) {
         return std::make_unique<ReptileRunner<T>>(sinusoid_mlp<T>(), reptile(threads, true),
                                                   sinusoid_batch<T>());
       }},
      {"sinusoid_reptile5_loop",
       [=](int threads) {
         return std::make_unique<ReptileRunner<T>>(sinusoid_mlp<T>(), reptile(threads, false),
                                                   sinusoid_batch<T>());
       }},
      {"omniglot_maml_paper",
       [=](int threads) {
         return std::make_unique<MamlRunner<T>>(convnet4<T>(5),
                                                maml(T(0.4), 1, threads, {.classify = true}),
                                                glyph_batch<T>(32, 5, 1, 1));
       }},
      {"omniglot_maml_torchbench",
       [=](int threads) {
         return std::make_unique<MamlRunner<T>>(torchbench_net<T>(),
                                                maml(T(0.1), 5, threads, {.classify = true}),
                                                glyph_batch<T>(5, 5, 5, 15));
       }},
      // The same two MAML workloads with the threads inside each task (one task's
      // graph alive at a time): Maml's threads_within_tasks().
      {"omniglot_maml_paper_within",
       [=](int threads) {
         return std::make_unique<MamlRunner<T>>(
             convnet4<T>(5), maml(T(0.4), 1, threads, {.classify = true, .within = true}),
             glyph_batch<T>(32, 5, 1, 1));
       }},
      {"omniglot_maml_torchbench_within",
       [=](int threads) {
         return std::make_unique<MamlRunner<T>>(
             torchbench_net<T>(), maml(T(0.1), 5, threads, {.classify = true, .within = true}),
             glyph_batch<T>(5, 5, 5, 15));
       }},
      {"protonet_60w5s",
       [](int threads) {
         return std::make_unique<ProtoRunner<T>>(convnet4<T>(0), threads,
                                                 glyph_batch<T>(1, 60, 5, 5)[0]);
       }},
      {"protonet_5w1s",
       [](int threads) {
         return std::make_unique<ProtoRunner<T>>(convnet4<T>(0), threads,
                                                 glyph_batch<T>(1, 5, 1, 15)[0]);
       }},
      {"matching_5w1s",
       [](int threads) {
         return std::make_unique<MatchingRunner<T>>(convnet4<T>(0), threads, 0,
                                                    glyph_batch<T>(1, 5, 1, 15)[0]);
       }},
      {"matching_20w1s",
       [](int threads) {
         return std::make_unique<MatchingRunner<T>>(convnet4<T>(0), threads, 0,
                                                    glyph_batch<T>(1, 20, 1, 5)[0]);
       }},
      {"matching_fce_5w1s",
       [](int threads) {
         return std::make_unique<MatchingRunner<T>>(convnet4<T>(0), threads, 5,
                                                    glyph_batch<T>(1, 5, 1, 15)[0]);
       }},
      {"matching_fce_20w1s",
       [](int threads) {
         return std::make_unique<MatchingRunner<T>>(convnet4<T>(0), threads, 5,
                                                    glyph_batch<T>(1, 20, 1, 5)[0]);
       }},
  };
}

template <class T>
std::unique_ptr<Runner<T>> make_runner(const std::string& name, int threads) {
  for (const auto& [n, f] : workloads<T>()) {
    if (n == name) return f(threads);
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
  auto runner = make_runner<float>(name, threads);
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
  // The times with 6 significant digits (as a stream writes them).
  fmt::print(
      "{{\"side\": \"metalearn\", \"workload\": \"{}\", \"threads\": {}, \"rss_before_kb\": {}, "
      "\"rss_peak_kb\": {}, \"peak_reset\": {}, \"ms\": [{:g}]}}\n",
      name, threads, rss_before, status_kb("VmHWM"), reset, fmt::join(ms, ", "));
  std::fflush(stdout);
  return 0;
}

template <class T>
void write_record(std::ofstream& out, const std::string& name, const Tensor<T>& t) {
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
            static_cast<std::streamsize>(sizeof(T) * static_cast<std::size_t>(t.numel())));
}

template <class U>
U read_value(std::ifstream& in) {
  U v{};
  in.read(reinterpret_cast<char*>(&v), sizeof v);
  return v;
}

/// The records of a dump of either precision, their values converted to T.
template <class T>
Records<T> read_records(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ml::IoError("bench_compare: cannot open '" + path + "'");
  std::string magic(8, '\0');
  in.read(magic.data(), 8);
  if (magic != "MLCMP032" && magic != "MLCMP064") {
    throw ml::IoError("bench_compare: '" + path + "' is not a bench_compare dump");
  }
  const bool f32 = magic == "MLCMP032";
  const auto count = read_value<std::uint32_t>(in);
  Records<T> records;
  for (std::uint32_t r = 0; r < count && in; ++r) {
    std::string name(read_value<std::uint32_t>(in), '\0');
    in.read(name.data(), static_cast<std::streamsize>(name.size()));
    std::vector<Index> dims(read_value<std::uint32_t>(in));
    for (auto& d : dims) d = static_cast<Index>(read_value<std::int64_t>(in));
    auto t = Tensor<T>::empty(ml::Shape(dims));
    T* out = t.data();
    for (Index k = 0; k < t.numel(); ++k) {
      out[k] = f32 ? static_cast<T>(read_value<float>(in)) : static_cast<T>(read_value<double>(in));
    }
    records.emplace_back(std::move(name), std::move(t));
  }
  if (!in) throw ml::IoError("bench_compare: '" + path + "' is truncated");
  return records;
}

template <class T>
int run_dump(const std::string& name, const std::string& path, const std::string& inputs) {
  auto runner = make_runner<T>(name, 1);
  if (!inputs.empty()) runner->load(read_records<T>(inputs));
  const auto params = runner->parameters();
  std::vector<std::pair<std::string, Tensor<T>>> records;
  for (std::size_t i = 0; i < params.size(); ++i) {
    records.emplace_back("param." + std::to_string(i) + "." + params.names()[i],
                         params.values()[i].detach().clone());
  }
  const auto grads = runner->gradient();
  const auto& batch = runner->batch();
  for (std::size_t t = 0; t < batch.size(); ++t) {
    const std::string p = "task." + std::to_string(t) + ".";
    records.emplace_back(p + "support_x", batch[t].support_x);
    records.emplace_back(p + "support_y", batch[t].classification()
                                              ? labels_as_tensor<T>(batch[t].support_labels)
                                              : batch[t].support_y);
    if (batch[t].query_x.defined()) {
      records.emplace_back(p + "query_x", batch[t].query_x);
      records.emplace_back(p + "query_y", batch[t].classification()
                                              ? labels_as_tensor<T>(batch[t].query_labels)
                                              : batch[t].query_y);
    }
  }
  for (std::size_t i = 0; i < grads.size(); ++i) {
    records.emplace_back("grad." + std::to_string(i), grads[i].detach());
  }
  std::ofstream out(path, std::ios::binary);
  if (!out) throw ml::IoError("bench_compare dump: cannot open '" + path + "' for writing");
  out.write(sizeof(T) == 4 ? "MLCMP032" : "MLCMP064", 8);
  const auto count = static_cast<std::uint32_t>(records.size());
  out.write(reinterpret_cast<const char*>(&count), sizeof count);
  for (const auto& [n, t] : records) write_record(out, n, t);
  if (!out) throw ml::IoError("bench_compare dump: write to '" + path + "' failed");
  return 0;
}

// ---- Google Benchmark cases -----------------------------------------------------------

void BM_Compare(benchmark::State& state, const std::string& name) {
  const int threads = static_cast<int>(state.range(0));
  auto runner = make_runner<float>(name, threads);
  runner->step();
  for (auto _ : state) runner->step();
  state.counters["steps/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void register_benchmarks() {
  for (const auto& [name, factory] : workloads<float>()) {
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
      for (const auto& [name, f] : workloads<float>()) fmt::print("{}\n", name);
      return 0;
    }
    if (mode == "time" && (argc == 6 || argc == 7)) {
      return run_time(argv[2], std::stoi(argv[3]), std::stoi(argv[4]), std::stod(argv[5]),
                      argc == 7 ? std::stod(argv[6]) : 1e9);
    }
    if (mode == "dump" && argc >= 4 && argc <= 6) {
      const std::string precision = argc >= 5 ? argv[4] : "f32";
      const std::string inputs = argc == 6 ? argv[5] : "";
      if (precision == "f32") return run_dump<float>(argv[2], argv[3], inputs);
      if (precision == "f64") return run_dump<double>(argv[2], argv[3], inputs);
    }
    if (mode == "time" || mode == "dump") {
      fmt::print(stderr,
                 "usage: bench_compare list | time <workload> <threads> <min_iters> "
                 "<min_seconds> [max_seconds] | dump <workload> <file> [f32|f64 [<inputs>]]\n");
      return 2;
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 1;
  }
  register_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
