// The meta-learner contract, for every algorithm: meta_gradient() changes nothing and
// apply() of it is meta_step() bit for bit; the gradients of two halves of a
// meta-batch add up to the gradient of the whole; a state saved to a checkpoint file
// continues a run bit for bit in a learner built from other initial values; a
// gradient or a state of another learner is refused with nothing changed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;

namespace {

// A model, a learner on it and a stream of meta-batches, per algorithm.
template <class L>
struct Case;

template <>
struct Case<alg::Maml<float>> {
  std::unique_ptr<ml::nn::Module<float>> model;
  std::unique_ptr<alg::Maml<float>> learner;
  explicit Case(std::uint64_t seed, bool /*carry*/ = true) {
    ml::Generator gen(seed);
    model = std::make_unique<ml::nn::MLP<float>>(std::vector<ml::Index>{1, 8, 8, 1}, gen);
    // Meta-SGD, so learned learning rates are meta-parameters too.
    learner = std::make_unique<alg::Maml<float>>(
        *model, alg::MamlOptions<float>{.inner_steps = 2, .learn_inner_lr = true, .seed = 3});
  }
  static std::vector<ml::data::TaskBatch<float>> stream(int n, ml::Index batch) {
    ml::data::SinusoidTasks<float> family({.shots = 5, .queries = 5});
    ml::data::MetaBatchSampler<float> batches(family, {.batch = batch, .seed = 2});
    std::vector<ml::data::TaskBatch<float>> out;
    for (int i = 0; i < n; ++i) out.push_back(batches.next());
    return out;
  }
};

template <>
struct Case<alg::Reptile<float>> {
  std::unique_ptr<ml::nn::Module<float>> model;
  std::unique_ptr<alg::Reptile<float>> learner;
  // With `carry`, the inner Adam state passes from task to task, so a task's result
  // depends on the tasks before it.
  explicit Case(std::uint64_t seed, bool carry = true) {
    ml::Generator gen(seed);
    model = std::make_unique<ml::nn::MLP<float>>(std::vector<ml::Index>{1, 8, 8, 1}, gen);
    // The carried Adam state and the annealed step size are part of the state.
    learner = std::make_unique<alg::Reptile<float>>(
        *model, alg::ReptileOptions<float>{.inner_optimizer = alg::InnerOptimizer::kAdam,
                                           .carry_inner_state = carry,
                                           .inner_steps = 3,
                                           .inner_batch = 5,
                                           .outer_step_final = 0.1f,
                                           .anneal_steps = 8,
                                           .loss = alg::LossKind::kMse,
                                           .seed = 4});
  }
  static std::vector<ml::data::TaskBatch<float>> stream(int n, ml::Index batch) {
    return Case<alg::Maml<float>>::stream(n, batch);
  }
};

template <>
struct Case<alg::ProtoNet<float>> {
  std::unique_ptr<alg::ProtoNet<float>> learner;
  explicit Case(std::uint64_t seed, bool /*carry*/ = true) {
    ml::Generator gen(seed);
    // Running batch-norm statistics (buffers) and a decaying learning rate.
    learner = std::make_unique<alg::ProtoNet<float>>(
        gen,
        alg::ProtoNetOptions<float>{
            .lr = 2e-3,
            .lr_decay = 0.5,
            .lr_decay_every = 2,
            .embedding = ml::nn::ConvNet4Options{
                .hidden = 4,
                .image_size = 16,
                .batch_norm = ml::nn::BatchNormOptions{.mode = ml::nn::BatchNormMode::kRunning}}});
  }
  static std::vector<ml::data::TaskBatch<float>> stream(int n, ml::Index batch) {
    ml::data::ProceduralGlyphs glyphs({.split = ml::data::Split::kTrain, .image_size = 16});
    ml::data::EpisodicSampler<float> episodes(glyphs, {.ways = 3, .shots = 2, .queries = 2});
    ml::data::MetaBatchSampler<float> batches(episodes, {.batch = batch, .seed = 5});
    std::vector<ml::data::TaskBatch<float>> out;
    for (int i = 0; i < n; ++i) out.push_back(batches.next());
    return out;
  }
};

template <>
struct Case<alg::MatchingNet<float>> {
  std::unique_ptr<alg::MatchingNet<float>> learner;
  explicit Case(std::uint64_t seed, bool /*carry*/ = true) {
    ml::Generator gen(seed);
    learner = std::make_unique<alg::MatchingNet<float>>(
        gen,
        alg::MatchingNetOptions<float>{
            .scale = 5.0f,
            .lr = 2e-3,
            .lr_decay = 0.5,
            .lr_decay_every = 2,
            .embedding = ml::nn::ConvNet4Options{
                .hidden = 4,
                .image_size = 16,
                .batch_norm = ml::nn::BatchNormOptions{.mode = ml::nn::BatchNormMode::kRunning}}});
  }
  static std::vector<ml::data::TaskBatch<float>> stream(int n, ml::Index batch) {
    return Case<alg::ProtoNet<float>>::stream(n, batch);
  }
};

template <>
struct Case<alg::ConditionalNeuralProcess<float>> {
  std::unique_ptr<alg::ConditionalNeuralProcess<float>> learner;
  explicit Case(std::uint64_t seed, bool /*carry*/ = true) {
    ml::Generator gen(seed);
    learner = std::make_unique<alg::ConditionalNeuralProcess<float>>(
        1, 1, gen, alg::CnpOptions{.encoder = {8, 8}, .decoder = {8}, .lr = 1e-3});
  }
  static std::vector<ml::data::TaskBatch<float>> stream(int n, ml::Index batch) {
    ml::data::GaussianProcessTasks<float> gp(
        {.max_context = 8, .max_target = 8, .targets_include_context = true});
    ml::data::MetaBatchSampler<float> batches(gp, {.batch = batch, .seed = 6});
    std::vector<ml::data::TaskBatch<float>> out;
    for (int i = 0; i < n; ++i) out.push_back(batches.next());
    return out;
  }
};

template <>
struct Case<alg::NeuralProcess<float>> {
  std::unique_ptr<alg::NeuralProcess<float>> learner;
  explicit Case(std::uint64_t seed, bool /*carry*/ = true) {
    ml::Generator gen(seed);
    learner = std::make_unique<alg::NeuralProcess<float>>(1, 1, gen,
                                                          alg::NpOptions{.deterministic = {8},
                                                                         .latent_encoder = {8},
                                                                         .latent = 4,
                                                                         .decoder = {8},
                                                                         .lr = 1e-3,
                                                                         .likelihood_samples = 4});
  }
  static std::vector<ml::data::TaskBatch<float>> stream(int n, ml::Index batch) {
    return Case<alg::ConditionalNeuralProcess<float>>::stream(n, batch);
  }
};

// Every tensor of a state, flattened, with the step counts (without the buffers when
// `buffers` is false).
std::vector<double> flat(const alg::LearnerState<float>& s, bool buffers = true) {
  std::vector<double> out{static_cast<double>(s.steps)};
  const auto add = [&](const ml::nn::ParamDict<float>& d) {
    for (const auto& [name, t] : d) out.insert(out.end(), t.data(), t.data() + t.numel());
  };
  add(s.parameters);
  if (buffers) add(s.buffers);
  for (const auto* o : {&s.optimizer, &s.inner_optimizer}) {
    if (!o->has_value()) continue;
    out.push_back(static_cast<double>((*o)->step));
    out.push_back((*o)->lr);
    add((*o)->buffers);
  }
  return out;
}

template <class L>
class MetaLearnerContract : public ::testing::Test {};

using Learners = ::testing::Types<alg::Maml<float>, alg::Reptile<float>, alg::ProtoNet<float>,
                                  alg::MatchingNet<float>, alg::ConditionalNeuralProcess<float>,
                                  alg::NeuralProcess<float>>;
TYPED_TEST_SUITE(MetaLearnerContract, Learners);

TYPED_TEST(MetaLearnerContract, MetaGradientChangesNothingAndApplyIsMetaStep) {
  static_assert(alg::MetaLearner<TypeParam>);
  const auto stream = Case<TypeParam>::stream(3, 2);
  Case<TypeParam> split(1);
  Case<TypeParam> fused(1);
  for (const auto& batch : stream) {
    // Nothing but running statistics (moved by forward passes in training mode).
    const auto before = flat(split.learner->state(), false);
    const alg::MetaGradient<float> g = split.learner->meta_gradient(batch);
    EXPECT_EQ(flat(split.learner->state(), false), before);
    EXPECT_EQ(g.tasks, batch.size());
    EXPECT_EQ(g.sum.size(), split.learner->meta_parameters().size());
    split.learner->apply(g);
    const alg::StepStats stats = fused.learner->meta_step(batch);
    EXPECT_EQ(flat(split.learner->state()), flat(fused.learner->state()));
    EXPECT_EQ(stats.meta_loss, g.stats.meta_loss);
    EXPECT_EQ(stats.tasks, batch.size());
  }
  EXPECT_EQ(split.learner->steps_taken(), 3);
}

TYPED_TEST(MetaLearnerContract, GradientsOfTwoHalvesAddUpToTheWhole) {
  const auto whole = Case<TypeParam>::stream(1, 4).front();
  const ml::data::TaskBatch<float> first(whole.begin(), whole.begin() + 2);
  const ml::data::TaskBatch<float> second(whole.begin() + 2, whole.end());
  Case<TypeParam> s(2, /*carry=*/false);
  const auto all = s.learner->meta_gradient(whole);
  const auto a = s.learner->meta_gradient(first);
  const auto b = s.learner->meta_gradient(second);
  ASSERT_EQ(a.tasks + b.tasks, all.tasks);
  auto ia = a.sum.begin();
  auto ib = b.sum.begin();
  for (const auto& [name, t] : all.sum) {
    const ml::Tensor<float>& ta = (*ia).second;
    const ml::Tensor<float>& tb = (*ib).second;
    for (ml::Index k = 0; k < t.numel(); ++k) {
      const float expected = t.data()[k];
      EXPECT_NEAR(ta.data()[k] + tb.data()[k], expected, 1e-5f * (1.f + std::abs(expected)))
          << name << "[" << k << "]";
    }
    ++ia;
    ++ib;
  }
}

TYPED_TEST(MetaLearnerContract, CheckpointFileContinuesBitForBit) {
  const auto stream = Case<TypeParam>::stream(5, 2);
  Case<TypeParam> straight(3);
  for (int i = 0; i < 2; ++i) straight.learner->meta_step(stream[i]);
  const auto path = std::filesystem::temp_directory_path() /
                    ("metalearn_contract_" + std::to_string(::getpid()) + ".safetensors");
  ml::train::save_checkpoint(path, *straight.learner, {{"note", "two steps"}});
  for (int i = 2; i < 5; ++i) straight.learner->meta_step(stream[i]);

  Case<TypeParam> resumed(99);  // other initial values
  const ml::io::Metadata metadata = ml::train::load_checkpoint(path, *resumed.learner);
  std::filesystem::remove(path);
  EXPECT_EQ(metadata.at("note"), "two steps");
  EXPECT_EQ(metadata.count("learner.steps"), 0u);
  EXPECT_EQ(resumed.learner->steps_taken(), 2);
  for (int i = 2; i < 5; ++i) resumed.learner->meta_step(stream[i]);
  EXPECT_EQ(flat(resumed.learner->state()), flat(straight.learner->state()));
}

TYPED_TEST(MetaLearnerContract, ForeignGradientsAndStatesChangeNothing) {
  const auto batch = Case<TypeParam>::stream(1, 2).front();
  Case<TypeParam> s(4);
  s.learner->meta_step(batch);
  // (Its forward passes may move running statistics: take the state after it.)
  alg::MetaGradient<float> g = s.learner->meta_gradient(batch);
  const auto before = flat(s.learner->state());

  alg::MetaGradient<float> no_tasks = g;
  no_tasks.tasks = 0;
  EXPECT_THROW(s.learner->apply(no_tasks), ml::ValueError);
  alg::MetaGradient<float> renamed;
  renamed.tasks = g.tasks;
  renamed.carried = g.carried;
  for (const auto& [name, t] : g.sum) renamed.sum.insert("x" + std::string(name), t);
  EXPECT_THROW(s.learner->apply(renamed), ml::ValueError);
  alg::MetaGradient<float> reshaped;
  reshaped.tasks = g.tasks;
  reshaped.carried = g.carried;
  for (const auto& [name, t] : g.sum)
    reshaped.sum.insert(name, ml::reshape(t, ml::Shape{t.numel()}));
  bool any_reshaped = false;
  for (const auto& [name, t] : g.sum) any_reshaped = any_reshaped || t.dim() != 1;
  if (any_reshaped) {
    EXPECT_THROW(s.learner->apply(reshaped), ml::ShapeError);
  }
  alg::MetaGradient<float> nan = g;
  nan.sum = ml::nn::ParamDict<float>();
  for (const auto& [name, t] : g.sum) nan.sum.insert(name, ml::full<float>(t.shape(), NAN));
  EXPECT_THROW(s.learner->apply(nan), ml::NonFiniteError);
  EXPECT_EQ(flat(s.learner->state()), before);

  alg::LearnerState<float> state = s.learner->state();
  alg::LearnerState<float> missing = state;
  missing.parameters = ml::nn::ParamDict<float>();
  EXPECT_THROW(s.learner->load_state(missing), ml::ValueError);
  alg::LearnerState<float> negative = state;
  negative.steps = -1;
  EXPECT_THROW(s.learner->load_state(negative), ml::ValueError);
  alg::LearnerState<float> swapped = state;
  std::swap(swapped.optimizer, swapped.inner_optimizer);
  EXPECT_THROW(s.learner->load_state(swapped), ml::ValueError);
  EXPECT_EQ(flat(s.learner->state()), before);
}

TEST(MetaLearnerCheckpoint, AFileOfMetaParametersAndOuterOptimizerLoadsIntoMaml) {
  // The layout the MAML Omniglot example wrote before learner states existed:
  // meta-parameters, the outer optimizer, and the example's own metadata.
  const auto stream = Case<alg::Maml<float>>::stream(4, 2);
  Case<alg::Maml<float>> straight(5);
  for (int i = 0; i < 2; ++i) straight.learner->meta_step(stream[i]);
  const alg::LearnerState<float> state = straight.learner->state();
  const auto path = std::filesystem::temp_directory_path() /
                    ("metalearn_contract_old_" + std::to_string(::getpid()) + ".safetensors");
  ml::io::save_checkpoint(
      path, ml::io::TrainingCheckpoint<float>{state.parameters, state.optimizer, {{"step", "2"}}});
  for (int i = 2; i < 4; ++i) straight.learner->meta_step(stream[i]);

  Case<alg::Maml<float>> resumed(6);
  const ml::io::Metadata metadata = ml::train::load_checkpoint(path, *resumed.learner);
  std::filesystem::remove(path);
  EXPECT_EQ(metadata.at("step"), "2");
  EXPECT_EQ(resumed.learner->steps_taken(), 2);
  for (int i = 2; i < 4; ++i) resumed.learner->meta_step(stream[i]);
  EXPECT_EQ(flat(resumed.learner->state()), flat(straight.learner->state()));
}

TEST(MetaLearnerCheckpoint, ReservedMetadataKeysAreRefused) {
  Case<alg::Reptile<float>> s(7);
  const auto path = std::filesystem::temp_directory_path() /
                    ("metalearn_contract_reserved_" + std::to_string(::getpid()) + ".safetensors");
  EXPECT_THROW(ml::train::save_checkpoint(path, *s.learner, {{"learner.steps", "3"}}),
               ml::ValueError);
  EXPECT_THROW(ml::train::save_checkpoint(path, *s.learner, {{"inner_optimizer.lr", "1"}}),
               ml::ValueError);
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
