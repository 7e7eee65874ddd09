// Pinned results: a few fixed-seed runs of every algorithm, reduced to a hash of the
// bits of the trained parameters (and buffers). The values were computed before the
// algorithms moved onto the meta-learner contract; any change of arithmetic, order of
// summation or random stream in the algorithms changes them. Run with
// METALEARN_PRINT_PINS=1 to print the current values when a change is intended (and
// say why in the commit).
//
// Matrix products differ in their last bits between machines (the BLAS kernel, FMA
// or not), so the pins hold where the primitives the runs use give the bits they gave
// where the pins were recorded: a fingerprint of those primitives (forward and
// backward passes of the runs' networks) is recorded with the pins, and a machine
// with another fingerprint skips the comparison, saying so.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <metalearn/metalearn.hpp>
#include <string>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;

namespace {

// FNV-1a over the bytes of every tensor of the module's parameters and buffers.
template <class T>
std::uint64_t state_hash(const ml::nn::Module<T>& m) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const auto& dict : {m.named_parameters(), m.named_buffers()}) {
    for (const auto& [name, t] : dict) {
      const auto* bytes = reinterpret_cast<const unsigned char*>(t.data());
      for (std::size_t i = 0; i < static_cast<std::size_t>(t.numel()) * sizeof(T); ++i) {
        h = (h ^ bytes[i]) * 0x100000001b3ULL;
      }
    }
  }
  return h;
}

bool printing() {
  return std::getenv("METALEARN_PRINT_PINS") != nullptr;
}

bool pins_apply();

// Compares a run's hash with its pin where the pins apply; prints it when asked (on any
// machine, so that two builds can be compared where the pins do not apply).
void expect_pin(const char* what, std::uint64_t got, std::uint64_t pinned) {
  if (printing())
    std::printf("pin %s = 0x%016llxULL\n", what, static_cast<unsigned long long>(got));
  if (pins_apply()) {
    EXPECT_EQ(got, pinned) << what << ": 0x" << std::hex << got;
  }
}

// Forward, backward and double-backward passes of the networks the pinned runs use,
// hashed: the bits of the primitives, independent of any algorithm and optimizer.
std::uint64_t primitives_fingerprint() {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  const auto mix = [&](const auto& tensors) {
    for (const auto& t : tensors) {
      const auto* bytes = reinterpret_cast<const unsigned char*>(t.data());
      const std::size_t n = static_cast<std::size_t>(t.numel()) * sizeof(*t.data());
      for (std::size_t i = 0; i < n; ++i) h = (h ^ bytes[i]) * 0x100000001b3ULL;
    }
  };
  {
    ml::Generator gen(1);
    ml::nn::MLP<float> mlp({1, 16, 16, 1}, gen);
    const auto x = ml::uniform<float>({5, 1}, gen, -5.f, 5.f);
    const auto y = ml::uniform<float>({5, 1}, gen, -5.f, 5.f);
    const auto params = mlp.parameters();
    auto g = ml::autograd::grad({ml::mse_loss(mlp.forward(x), y)}, params, {.create_graph = true});
    ml::Tensor<float> total = ml::sum(ml::mul(g[0], g[0]));
    for (std::size_t i = 1; i < g.size(); ++i) total = ml::add(total, ml::sum(ml::mul(g[i], g[i])));
    mix(g);
    mix(ml::autograd::grad({total}, params));
  }
  {
    ml::Generator gen(2);
    ml::nn::MLP<double> mlp({1, 16, 16, 1}, gen);
    const auto x = ml::uniform<double>({5, 1}, gen, -5.0, 5.0);
    const auto y = ml::uniform<double>({5, 1}, gen, -5.0, 5.0);
    mix(ml::autograd::grad({ml::mse_loss(mlp.forward(x), y)}, mlp.parameters()));
  }
  {
    ml::Generator gen(3);
    ml::nn::ConvNet4<float> net(
        ml::nn::ConvNet4Options{
            .hidden = 6,
            .image_size = 16,
            .batch_norm = ml::nn::BatchNormOptions{.mode = ml::nn::BatchNormMode::kRunning}},
        gen);
    net.train();
    const auto x = ml::uniform<float>({6, 1, 16, 16}, gen, 0.f, 1.f);
    const auto e = net.forward(x);
    mix(ml::autograd::grad({ml::sum(ml::mul(e, e))}, net.parameters()));
  }
  return h;
}

// The fingerprint where the pins were recorded: an Intel Xeon (Sapphire Rapids family,
// AVX-512 kernels), GCC 12, the OpenBLAS build, whose generic OpenBLAS core hands every
// product to the library's own GEMM kernel (tensor/gemm.hpp, gemm_backend()).
constexpr std::uint64_t kPinnedFingerprint = 0x9818bac0b51b939fULL;

// Whether the pins apply here; prints the fingerprint when asked.
bool pins_apply() {
  static const std::uint64_t here = primitives_fingerprint();
  static const bool once = [] {
    if (printing()) {
      std::printf("pin fingerprint = 0x%016llxULL\n", static_cast<unsigned long long>(here));
    }
    return true;
  }();
  (void)once;
  return here == kPinnedFingerprint;
}

// With METALEARN_PRINT_PINS the runs go ahead and print their hashes anyway.
#define SKIP_UNLESS_PINS_APPLY()                                                            \
  if (!pins_apply() && !printing())                                                         \
  GTEST_SKIP() << "the primitives' bits on this machine (fingerprint 0x" << std::hex        \
               << primitives_fingerprint() << ") differ from those where the pins were "    \
               << "recorded (0x" << kPinnedFingerprint                                      \
               << "): another BLAS kernel, FMA group or SIMD target; the pinned values do " \
               << "not apply here"

template <class T>
std::uint64_t maml_run(const alg::MamlOptions<T>& options, int batch) {
  ml::Generator gen(7);
  ml::nn::MLP<T> model({1, 16, 16, 1}, gen);
  alg::Maml<T> maml(model, options);
  ml::data::SinusoidTasks<T> family({.shots = 5, .queries = 5});
  ml::data::MetaBatchSampler<T> batches(family,
                                        {.batch = static_cast<ml::Index>(batch), .seed = 3});
  for (int s = 0; s < 3; ++s) maml.meta_step(batches.next());
  return state_hash(model);
}

}  // namespace

TEST(Pinned, MamlSecondOrder) {
  SKIP_UNLESS_PINS_APPLY();
  expect_pin("maml2", maml_run(alg::MamlOptions<float>{.inner_lr = 0.01f}, 4),
             0x0519f8a6cf8a9932ULL);
  expect_pin("maml2_double",
             maml_run(alg::MamlOptions<double>{.inner_lr = 0.01, .inner_steps = 2}, 3),
             0x1cde19d758ce4237ULL);
}

TEST(Pinned, MamlVariants) {
  SKIP_UNLESS_PINS_APPLY();
  expect_pin("fomaml", maml_run(alg::MamlOptions<float>{.inner_steps = 2, .first_order = true}, 4),
             0xaa6cf011a912c88bULL);
  expect_pin("metasgd", maml_run(alg::MamlOptions<float>{.learn_inner_lr = true}, 4),
             0xae0e78514d405827ULL);
  expect_pin("mamlpp",
             maml_run(alg::MamlOptions<float>{.inner_steps = 2,
                                              .per_step_lr = true,
                                              .multi_step_loss = true,
                                              .msl_anneal_steps = 2},
                      4),
             0xadc127d100b300f5ULL);
  expect_pin("maml_batched", maml_run(alg::MamlOptions<float>{.batch_tasks = true}, 4),
             0x0519f8a6cf8a9932ULL);
  expect_pin("maml_sgd",
             maml_run(alg::MamlOptions<float>{.outer_optimizer = alg::OuterOptimizer::kSgd}, 5),
             0x810252244f932c4cULL);
}

TEST(Pinned, Reptile) {
  SKIP_UNLESS_PINS_APPLY();
  const auto run = [](const alg::ReptileOptions<float>& options) {
    ml::Generator gen(11);
    ml::nn::MLP<float> model({1, 16, 16, 1}, gen);
    alg::Reptile<float> reptile(model, options);
    ml::data::SinusoidTasks<float> family({.shots = 10, .queries = 5});
    ml::data::MetaBatchSampler<float> batches(family, {.batch = 3, .seed = 4});
    for (int s = 0; s < 3; ++s) reptile.meta_step(batches.next());
    return state_hash(model);
  };
  const auto base = alg::ReptileOptions<float>{.inner_lr = 0.02f,
                                               .inner_steps = 4,
                                               .inner_batch = 5,
                                               .outer_step_final = 0.5f,
                                               .anneal_steps = 10,
                                               .loss = alg::LossKind::kMse};
  expect_pin("reptile_sgd", run(base), 0x5075860eaaafe6fcULL);
  auto adam_carry = base;
  adam_carry.inner_optimizer = alg::InnerOptimizer::kAdam;
  adam_carry.carry_inner_state = true;
  expect_pin("reptile_adam_carry", run(adam_carry), 0x628c91748c5d30e6ULL);
  auto batched = base;
  batched.batch_tasks = true;
  expect_pin("reptile_batched", run(batched), 0xd7c23766f7f4b548ULL);
}

TEST(Pinned, ProtoNet) {
  SKIP_UNLESS_PINS_APPLY();
  const auto options = alg::ProtoNetOptions<float>{
      .lr = 2e-3,
      .lr_decay = 0.5,
      .lr_decay_every = 2,
      .embedding = ml::nn::ConvNet4Options{
          .hidden = 6,
          .image_size = 16,
          .batch_norm = ml::nn::BatchNormOptions{.mode = ml::nn::BatchNormMode::kRunning}}};
  ml::data::ProceduralGlyphs glyphs({.split = ml::data::Split::kTrain, .image_size = 16});
  ml::data::EpisodicSampler<float> episodes(glyphs, {.ways = 4, .shots = 2, .queries = 2});
  ml::Generator gen(31);
  alg::ProtoNet<float> protonet(gen, options);
  ml::data::MetaBatchSampler<float> batches(episodes, {.batch = 2, .seed = 8});
  for (int i = 0; i < 3; ++i) protonet.meta_step(batches.next());
  // Re-pinned when ProceduralGlyphs became the harder family: its images changed, the
  // algorithm did not.
  expect_pin("protonet", state_hash(protonet.model()), 0x6ea74f7655e820e3ULL);
}
