// No non-finite state saved over good state: checkpoints refuse NaN and infinity,
// options reject nonsensical values, and a meta-step whose meta-gradient or
// updated parameters are not finite throws and leaves parameters and optimizer
// state as they were.
#include <cmath>
#include <limits>

#include "reliability/reliability.hpp"

namespace {

using reliability::expect_error;
using reliability::listing;
using reliability::read_bytes;
using reliability::state_of;
using reliability::values_of;
namespace ml = metalearn;
namespace alg = metalearn::algorithms;
namespace fs = std::filesystem;

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

ml::data::Task<float> regression_task(ml::Generator& gen, bool nan_target = false) {
  ml::data::Task<float> t;
  t.support_x = ml::uniform<float>({5, 1}, gen, -2.f, 2.f);
  t.support_y = ml::uniform<float>({5, 1}, gen, -1.f, 1.f);
  t.query_x = ml::uniform<float>({5, 1}, gen, -2.f, 2.f);
  t.query_y = ml::uniform<float>({5, 1}, gen, -1.f, 1.f);
  if (nan_target) t.query_y.data()[2] = kNan;
  t.ways = 1;
  t.shots = 5;
  t.queries = 5;
  return t;
}

ml::data::Task<float> labelled_task(ml::Generator& gen, bool nan_input = false) {
  ml::data::Task<float> t;
  t.support_x = ml::randn<float>({6, 4}, gen);
  t.support_labels = {0, 1, 2, 0, 1, 2};
  t.query_x = ml::randn<float>({6, 4}, gen);
  t.query_labels = {0, 1, 2, 0, 1, 2};
  if (nan_input) t.support_x.data()[3] = kNan;
  t.ways = 3;
  t.shots = 2;
  t.queries = 2;
  return t;
}

class Checkpoints : public reliability::ScratchDir {
 protected:
  ml::io::TrainingCheckpoint<float> good() const {
    ml::io::TrainingCheckpoint<float> c;
    c.parameters.insert("w", ml::full<float>({3}, 1.f));
    c.parameters.insert("b", ml::full<float>({1}, 2.f));
    ml::optim::OptimizerState<float> s;
    s.step = 4;
    s.lr = 0.01;
    s.buffers.insert("0.exp_avg", ml::zeros<float>({3}));
    c.optimizer = s;
    c.metadata["step"] = "4";
    return c;
  }
  fs::path path() const { return dir_ / "run.safetensors"; }
  /// Saves a good checkpoint and expects `save` to throw E with `needle` while the
  /// file keeps its bytes and no temporary file is left.
  template <class E>
  void expect_refused(const std::function<void()>& save, const std::string& needle) {
    ml::io::save_checkpoint(path(), good());
    const std::string before = read_bytes(path());
    const auto files = listing(dir_);
    expect_error<E>(save, needle);
    EXPECT_EQ(read_bytes(path()), before);
    EXPECT_EQ(listing(dir_), files);
  }
};

TEST_F(Checkpoints, NanParameterIsRefusedAndTheLastGoodFileKept) {
  auto c = good();
  c.parameters.find("b")->data()[0] = kNan;
  expect_refused<ml::NonFiniteError>([&] { ml::io::save_checkpoint(path(), c); },
                                     "tensor 'b' holds nan at element 0");
}

TEST_F(Checkpoints, InfiniteOptimizerBufferIsRefused) {
  auto c = good();
  c.optimizer->buffers.find("0.exp_avg")->data()[2] = -kInf;
  expect_refused<ml::NonFiniteError>([&] { ml::io::save_checkpoint(path(), c); },
                                     "tensor 'optimizer.0.exp_avg' holds -inf at element 2");
}

TEST_F(Checkpoints, InfiniteLearningRateIsRefused) {
  auto c = good();
  c.optimizer->lr = std::numeric_limits<double>::infinity();
  expect_refused<ml::ValueError>([&] { ml::io::save_checkpoint(path(), c); }, "learning rate inf");
}

TEST_F(Checkpoints, ReservedNameIsRefused) {
  auto c = good();
  c.parameters.insert("optimizer.w", ml::ones<float>({1}));
  expect_refused<ml::ValueError>([&] { ml::io::save_checkpoint(path(), c); }, "reserved prefix");
}

TEST_F(Checkpoints, NonFiniteValuesAreSavedWhenAskedFor) {
  auto c = good();
  c.parameters.find("w")->data()[1] = kInf;
  ml::io::save_checkpoint(path(), c, {.allow_non_finite = true});
  const auto back = ml::io::load_checkpoint<float>(path());
  EXPECT_EQ(back.parameters.find("w")->to_vector()[1], kInf);
}

/// A checkpoint whose optimizer metadata is `step` and `lr`, written as is.
void write_with_optimizer_metadata(const fs::path& path, const std::string& step,
                                   const std::string& lr) {
  ml::nn::ParamDict<float> p;
  p.insert("w", ml::ones<float>({2}));
  ml::io::save_safetensors(path, p, {{"optimizer.step", step}, {"optimizer.lr", lr}});
}

TEST_F(Checkpoints, LoadRejectsAnInfiniteLearningRate) {
  write_with_optimizer_metadata(path(), "3", "inf");
  expect_error<ml::IoError>([&] { (void)ml::io::load_checkpoint<float>(path()); }, "lr='inf'");
}

TEST_F(Checkpoints, LoadRejectsANanLearningRate) {
  write_with_optimizer_metadata(path(), "3", "nan");
  expect_error<ml::IoError>([&] { (void)ml::io::load_checkpoint<float>(path()); }, "lr='nan'");
}

TEST_F(Checkpoints, LoadRejectsANegativeStep) {
  write_with_optimizer_metadata(path(), "-1", "0.1");
  expect_error<ml::IoError>([&] { (void)ml::io::load_checkpoint<float>(path()); }, "step='-1'");
}

TEST_F(Checkpoints, LoadRejectsATrailingCharacterInTheLearningRate) {
  write_with_optimizer_metadata(path(), "3", "0.1x");
  expect_error<ml::IoError>([&] { (void)ml::io::load_checkpoint<float>(path()); }, "0.1x");
}

TEST(Options, MamlRejectsANegativeInnerLr) {
  ml::Generator gen(1);
  ml::nn::MLP<float> model({1, 4, 1}, gen);
  expect_error<ml::ValueError>(
      [&] { alg::Maml<float>(model, alg::MamlOptions<float>{.inner_lr = -0.1f}); },
      "Maml: inner_lr must be finite and >= 0, got -0.1");
}

TEST(Options, MamlRejectsANanInnerLr) {
  ml::Generator gen(1);
  ml::nn::MLP<float> model({1, 4, 1}, gen);
  expect_error<ml::ValueError>(
      [&] { alg::Maml<float>(model, alg::MamlOptions<float>{.inner_lr = kNan}); }, "inner_lr");
}

TEST(Options, MamlRejectsAnInfiniteOuterLr) {
  ml::Generator gen(1);
  ml::nn::MLP<float> model({1, 4, 1}, gen);
  expect_error<ml::ValueError>(
      [&] { alg::Maml<float>(model, alg::MamlOptions<float>{.outer_lr = kInf}); }, "outer_lr");
}

TEST(Options, MamlRejectsNegativeEvalInnerSteps) {
  ml::Generator gen(1);
  ml::nn::MLP<float> model({1, 4, 1}, gen);
  expect_error<ml::ValueError>(
      [&] { alg::Maml<float>(model, alg::MamlOptions<float>{.eval_inner_steps = -2}); },
      "eval_inner_steps (-2) must be >= 0");
}

TEST(Options, MamlRejectsNegativeThreads) {
  ml::Generator gen(1);
  ml::nn::MLP<float> model({1, 4, 1}, gen);
  expect_error<ml::ValueError>(
      [&] { alg::Maml<float>(model, alg::MamlOptions<float>{.threads = -3}); },
      "Maml: threads must be >= 0");
}

TEST(Options, MamlRejectsANegativeAnnealingPeriod) {
  ml::Generator gen(1);
  ml::nn::MLP<float> model({1, 4, 1}, gen);
  expect_error<ml::ValueError>(
      [&] {
        alg::Maml<float>(model,
                         alg::MamlOptions<float>{
                             .inner_steps = 2, .multi_step_loss = true, .msl_anneal_steps = -5});
      },
      "negative number of steps -5");
}

TEST(Options, ReptileRejectsNegativeThreads) {
  ml::Generator gen(1);
  ml::nn::MLP<float> model({1, 4, 1}, gen);
  expect_error<ml::ValueError>(
      [&] { alg::Reptile<float>(model, alg::ReptileOptions<float>{.threads = -1}); },
      "Reptile: threads must be >= 0");
}

TEST(Options, ReptileRejectsAnInfiniteInnerLr) {
  ml::Generator gen(1);
  ml::nn::MLP<float> model({1, 4, 1}, gen);
  expect_error<ml::ValueError>(
      [&] { alg::Reptile<float>(model, alg::ReptileOptions<float>{.inner_lr = kInf}); },
      "must be finite and non-negative");
}

TEST(Options, ProtoNetRejectsNegativeThreads) {
  ml::Generator gen(1);
  ml::nn::MLP<float> embedding({4, 8, 5}, gen);
  expect_error<ml::ValueError>(
      [&] { alg::ProtoNet<float>(embedding, alg::ProtoNetOptions<float>{.threads = -2}); },
      "ProtoNet: threads must be >= 0");
}

TEST(Options, OmniglotRejectsNegativeThreadsBeforeReadingAnything) {
  const fs::path root = fs::temp_directory_path() / "metalearn_reliability_no_omniglot_here";
  expect_error<ml::ValueError>(
      [&] { (void)ml::data::OmniglotDataset({.root = root, .threads = -1}); },
      "OmniglotDataset: threads must be >= 0");
  EXPECT_FALSE(fs::exists(root));
}

TEST(Options, OuterStateWithAnInfiniteLearningRateIsRejected) {
  ml::Generator gen(1);
  ml::nn::MLP<float> model({1, 4, 1}, gen);
  alg::Maml<float> maml(model, alg::MamlOptions<float>{});
  auto state = maml.state();
  const auto before = state_of(*state.optimizer);
  state.optimizer->lr = std::numeric_limits<double>::infinity();
  expect_error<ml::ValueError>([&] { maml.load_state(state); },
                               "Adam::load_state: invalid step 0 or learning rate inf");
  EXPECT_EQ(state_of(*maml.state().optimizer), before);
}

TEST(Options, OptimizerRejectsANanLearningRate) {
  ml::Generator gen(1);
  ml::nn::MLP<float> model({1, 4, 1}, gen);
  ml::optim::SGD<float> sgd(model.parameters(), ml::optim::SGDOptions{.lr = 0.1});
  expect_error<ml::ValueError>([&] { sgd.set_lr(std::nan("")); }, "SGD::set_lr: invalid");
  EXPECT_EQ(sgd.lr(), 0.1);
}

TEST(FiniteMetaStep, MamlNanTargetLeavesParametersAndOptimizerUnchanged) {
  ml::Generator gen(2);
  ml::nn::MLP<float> model({1, 8, 1}, gen);
  alg::Maml<float> maml(model, alg::MamlOptions<float>{});
  (void)maml.meta_step({regression_task(gen), regression_task(gen)});
  const auto params = values_of(maml.meta_parameters());
  const auto state = state_of(*maml.state().optimizer);
  expect_error<ml::NonFiniteError>(
      [&] {
        (void)maml.meta_step({regression_task(gen), regression_task(gen, true)});
      },
      "Maml::meta_step (meta-step 1): the meta-gradient of '0.weight' holds");
  EXPECT_EQ(values_of(maml.meta_parameters()), params);
  EXPECT_EQ(state_of(*maml.state().optimizer), state);
  EXPECT_EQ(maml.steps_taken(), 1);
  // The next good step proceeds as if the bad one never happened.
  (void)maml.meta_step({regression_task(gen)});
  EXPECT_EQ(maml.steps_taken(), 2);
}

TEST(FiniteMetaStep, MamlUpdateThatOverflowsIsRolledBack) {
  ml::Generator gen(2);
  ml::nn::MLP<float> model({1, 8, 1}, gen);
  alg::Maml<float> maml(
      model,
      alg::MamlOptions<float>{.outer_lr = 3e38f, .outer_optimizer = alg::OuterOptimizer::kSgd});
  const auto params = values_of(maml.meta_parameters());
  const auto state = state_of(*maml.state().optimizer);
  expect_error<ml::NonFiniteError>([&] { (void)maml.meta_step({regression_task(gen)}); },
                                   "after the update");
  EXPECT_EQ(values_of(maml.meta_parameters()), params);
  EXPECT_EQ(state_of(*maml.state().optimizer), state);
  EXPECT_EQ(maml.steps_taken(), 0);
}

TEST(FiniteMetaStep, MamlWithoutTheCheckLetsNanThrough) {
  ml::Generator gen(2);
  ml::nn::MLP<float> model({1, 8, 1}, gen);
  alg::Maml<float> maml(model, alg::MamlOptions<float>{.check_finite = false});
  (void)maml.meta_step({regression_task(gen, true)});
  EXPECT_TRUE(std::isnan(model.named_parameters().find("0.weight")->data()[0]));
}

TEST(FiniteMetaStep, ReptileNanTargetLeavesParametersUnchanged) {
  ml::Generator gen(3);
  ml::nn::MLP<float> model({1, 8, 1}, gen);
  alg::Reptile<float> reptile(
      model, alg::ReptileOptions<float>{.inner_steps = 2, .loss = alg::LossKind::kMse});
  const auto params = values_of(model);
  auto task = regression_task(gen);
  task.support_y.data()[0] = kNan;
  expect_error<ml::NonFiniteError>(
      [&] {
        reptile.meta_step({regression_task(gen), task});
      },
      "Reptile::meta_gradient (meta-step 0), task 1: the adapted weights of '0.weight'");
  EXPECT_EQ(values_of(model), params);
  EXPECT_EQ(reptile.steps_taken(), 0);
}

TEST(FiniteMetaStep, ReptileBatchedTasksNanLeavesParametersUnchanged) {
  ml::Generator gen(3);
  ml::nn::MLP<float> model({1, 8, 1}, gen);
  alg::Reptile<float> reptile(
      model, alg::ReptileOptions<float>{
                 .inner_steps = 2, .loss = alg::LossKind::kMse, .batch_tasks = true});
  const auto params = values_of(model);
  auto task = regression_task(gen);
  task.support_y.data()[4] = kNan;
  expect_error<ml::NonFiniteError>(
      [&] {
        reptile.meta_step({regression_task(gen), task});
      },
      "Reptile::meta_step (meta-step 0): the Reptile direction of");
  EXPECT_EQ(values_of(model), params);
  EXPECT_EQ(reptile.steps_taken(), 0);
}

TEST(FiniteMetaStep, MamlBatchedTasksNanLeavesParametersUnchanged) {
  ml::Generator gen(5);
  ml::nn::MLP<float> model({1, 8, 1}, gen);
  alg::Maml<float> maml(model, alg::MamlOptions<float>{.batch_tasks = true});
  const auto params = values_of(maml.meta_parameters());
  const auto state = state_of(*maml.state().optimizer);
  expect_error<ml::NonFiniteError>(
      [&] {
        (void)maml.meta_step({regression_task(gen, true), regression_task(gen)});
      },
      "the meta-gradient of");
  EXPECT_EQ(values_of(maml.meta_parameters()), params);
  EXPECT_EQ(state_of(*maml.state().optimizer), state);
}

TEST(FiniteMetaStep, ReptileCarriedStateIsKeptOnNan) {
  ml::Generator gen(3);
  ml::nn::MLP<float> model({1, 8, 1}, gen);
  alg::Reptile<float> reptile(
      model, alg::ReptileOptions<float>{
                 .carry_inner_state = true, .inner_steps = 2, .loss = alg::LossKind::kMse});
  reptile.meta_step({regression_task(gen)});
  const auto params = values_of(model);
  const auto state = state_of(*reptile.state().inner_optimizer);
  auto task = regression_task(gen);
  task.support_x.data()[1] = kInf;
  EXPECT_THROW(reptile.meta_step({task}), ml::NonFiniteError);
  EXPECT_EQ(values_of(model), params);
  EXPECT_EQ(state_of(*reptile.state().inner_optimizer), state);
}

TEST(FiniteMetaStep, ProtoNetNanInputLeavesParametersAndOptimizerUnchanged) {
  ml::Generator gen(4);
  ml::nn::MLP<float> embedding({4, 8, 5}, gen);
  alg::ProtoNet<float> net(embedding, alg::ProtoNetOptions<float>{.lr = 0.05});
  (void)net.meta_step({labelled_task(gen)});
  const auto params = values_of(net.model());
  const auto state = state_of(*net.state().optimizer);
  expect_error<ml::NonFiniteError>([&] { (void)net.meta_step({labelled_task(gen, true)}); },
                                   "ProtoNet::meta_step (meta-step 1): the meta-gradient of");
  EXPECT_EQ(values_of(net.model()), params);
  EXPECT_EQ(state_of(*net.state().optimizer), state);
  EXPECT_EQ(net.steps_taken(), 1);
}

}  // namespace

namespace bn_restore {

/// Linear -> BatchNorm1d with running statistics -> ReLU -> Linear: a model whose
/// forward passes change buffers during a meta-step.
void build_running_stats_model(ml::nn::Sequential<float>& net, ml::Generator& gen) {
  net.push_back(std::make_shared<ml::nn::Linear<float>>(4, 8, gen));
  net.push_back(std::make_shared<ml::nn::BatchNorm1d<float>>(
      8, ml::nn::BatchNormOptions{.mode = ml::nn::BatchNormMode::kRunning}));
  net.push_back(std::make_shared<ml::nn::ReLU<float>>());
  net.push_back(std::make_shared<ml::nn::Linear<float>>(8, 3, gen));
}

TEST(FiniteMetaStep, MamlNanInputLeavesRunningStatisticsUnchanged) {
  ml::Generator gen(5);
  ml::nn::Sequential<float> model;
  build_running_stats_model(model, gen);
  alg::Maml<float> maml(model, alg::MamlOptions<float>{.loss = alg::LossKind::kCrossEntropy});
  (void)maml.meta_step({labelled_task(gen), labelled_task(gen)});
  const auto before = values_of(model);  // parameters and running statistics
  expect_error<ml::NonFiniteError>(
      [&] {
        (void)maml.meta_step({labelled_task(gen), labelled_task(gen, true)});
      },
      "Maml::meta_step (meta-step 1)");
  EXPECT_EQ(values_of(model), before);
  EXPECT_EQ(maml.steps_taken(), 1);
}

TEST(FiniteMetaStep, ProtoNetNanInputLeavesRunningStatisticsUnchanged) {
  ml::Generator gen(6);
  ml::nn::Sequential<float> model;
  build_running_stats_model(model, gen);
  alg::ProtoNet<float> protonet(model, alg::ProtoNetOptions<float>{});
  (void)protonet.meta_step({labelled_task(gen)});
  const auto before = values_of(model);
  expect_error<ml::NonFiniteError>(
      [&] {
        (void)protonet.meta_step({labelled_task(gen), labelled_task(gen, true)});
      },
      "ProtoNet::meta_step (meta-step 1)");
  EXPECT_EQ(values_of(model), before);
}

TEST(FiniteMetaStep, ReptileNanInputLeavesRunningStatisticsUnchanged) {
  ml::Generator gen(7);
  ml::nn::Sequential<float> model;
  build_running_stats_model(model, gen);
  alg::Reptile<float> reptile(
      model, alg::ReptileOptions<float>{.inner_steps = 2, .loss = alg::LossKind::kCrossEntropy});
  reptile.meta_step({labelled_task(gen)});
  const auto before = values_of(model);
  expect_error<ml::NonFiniteError>([&] { reptile.meta_step({labelled_task(gen, true)}); },
                                   "Reptile::meta_gradient (meta-step 1), task 0");
  EXPECT_EQ(values_of(model), before);
}

}  // namespace bn_restore
