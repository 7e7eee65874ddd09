// All-or-nothing loads: every name and shape is checked before anything changes,
// strict by default (missing and unknown names are errors naming them), with an
// explicit non-strict mode.
#include "reliability/reliability.hpp"

namespace {

using reliability::expect_error;
using reliability::state_of;
using reliability::values_of;
namespace ml = metalearn;
namespace alg = metalearn::algorithms;
namespace fs = std::filesystem;

/// A copy of `dict` with every value replaced by `value`.
ml::nn::ParamDict<float> filled(const ml::nn::ParamDict<float>& dict, float value) {
  ml::nn::ParamDict<float> out;
  for (const auto& [name, t] : dict)
    out.insert(std::string(name), ml::full<float>(t.shape(), value));
  return out;
}

/// `dict` without the entry `skip`.
ml::nn::ParamDict<float> without(const ml::nn::ParamDict<float>& dict, const std::string& skip) {
  ml::nn::ParamDict<float> out;
  for (const auto& [name, t] : dict) {
    if (name != skip) out.insert(std::string(name), t);
  }
  return out;
}

/// `dict` with `name` replaced by a tensor of `shape`.
ml::nn::ParamDict<float> reshaped(const ml::nn::ParamDict<float>& dict, const std::string& name,
                                  const ml::Shape& shape) {
  ml::nn::ParamDict<float> out;
  for (const auto& [n, t] : dict)
    out.insert(std::string(n), n == name ? ml::ones<float>(shape) : t);
  return out;
}

struct Mlp {
  ml::Generator gen{4};
  ml::nn::MLP<float> model{{2, 4, 4, 1}, gen};
};

TEST(AllOrNothingLoad, MissingLastTensorChangesNoEarlierLayer) {
  Mlp m;
  const auto before = values_of(m.model);
  const auto values = without(filled(m.model.named_parameters(), 7.f), "4.bias");
  expect_error<ml::ValueError>([&] { m.model.load_parameters(values); }, "'4.bias' is missing");
  EXPECT_EQ(values_of(m.model), before);
}

TEST(AllOrNothingLoad, MisshapenLastTensorChangesNoEarlierLayer) {
  Mlp m;
  const auto before = values_of(m.model);
  const auto values = reshaped(filled(m.model.named_parameters(), 7.f), "4.bias", {2});
  expect_error<ml::ShapeError>([&] { m.model.load_parameters(values); },
                               "'4.bias' has shape [2] but the module expects [1]");
  EXPECT_EQ(values_of(m.model), before);
}

TEST(AllOrNothingLoad, UnknownNameIsAnErrorNamingIt) {
  Mlp m;
  const auto before = values_of(m.model);
  auto values = filled(m.model.named_parameters(), 7.f);
  values.insert("9.weight", ml::ones<float>({1}));
  expect_error<ml::ValueError>([&] { m.model.load_parameters(values); },
                               "'9.weight' is not a parameter of this module");
  EXPECT_EQ(values_of(m.model), before);
}

TEST(AllOrNothingLoad, EmptyDictIsAnErrorInStrictMode) {
  Mlp m;
  const auto before = values_of(m.model);
  expect_error<ml::ValueError>([&] { m.model.load_parameters({}); },
                               "(it has: nothing); nothing was loaded");
  EXPECT_EQ(values_of(m.model), before);
  m.model.load_parameters({}, ml::nn::LoadMode::kNonStrict);  // loads nothing, as asked
  EXPECT_EQ(values_of(m.model), before);
}

TEST(AllOrNothingLoad, NonStrictIgnoresUnknownNames) {
  Mlp m;
  auto values = filled(m.model.named_parameters(), 7.f);
  values.insert("extra", ml::ones<float>({1}));
  m.model.load_parameters(values, ml::nn::LoadMode::kNonStrict);
  for (const auto& v : values_of(m.model.named_parameters())) {
    for (float x : v) EXPECT_EQ(x, 7.f);
  }
}

TEST(AllOrNothingLoad, NonStrictLeavesMissingNamesAlone) {
  Mlp m;
  const auto bias = m.model.named_parameters().find("4.bias")->to_vector();
  m.model.load_parameters(without(filled(m.model.named_parameters(), 7.f), "4.bias"),
                          ml::nn::LoadMode::kNonStrict);
  EXPECT_EQ(m.model.named_parameters().find("4.bias")->to_vector(), bias);
  EXPECT_EQ(m.model.named_parameters().find("0.weight")->to_vector()[0], 7.f);
}

TEST(AllOrNothingLoad, NonStrictStillRejectsAWrongShapeAndChangesNothing) {
  Mlp m;
  const auto before = values_of(m.model);
  const auto values = reshaped(filled(m.model.named_parameters(), 7.f), "4.weight", {3, 3});
  expect_error<ml::ShapeError>(
      [&] { m.model.load_parameters(values, ml::nn::LoadMode::kNonStrict); }, "4.weight");
  EXPECT_EQ(values_of(m.model), before);
}

TEST(AllOrNothingLoad, ParametersAndBuffersLoadFromOneDict) {
  ml::nn::BatchNorm1d<float> a(3,
                               ml::nn::BatchNormOptions{.mode = ml::nn::BatchNormMode::kRunning});
  ml::nn::BatchNorm1d<float> b(3,
                               ml::nn::BatchNormOptions{.mode = ml::nn::BatchNormMode::kRunning});
  auto both = filled(a.named_parameters(), 2.f);
  for (const auto& [name, t] : filled(a.named_buffers(), 3.f)) both.insert(std::string(name), t);
  b.load_parameters(both);
  b.load_buffers(both);
  EXPECT_EQ(b.named_buffers().find("running_var")->to_vector(), (std::vector<float>(3, 3.f)));
  EXPECT_EQ(b.named_parameters().find("weight")->to_vector(), (std::vector<float>(3, 2.f)));
}

TEST(AllOrNothingLoad, BuffersWithAMissingEntryChangeNothing) {
  ml::nn::BatchNorm1d<float> bn(3,
                                ml::nn::BatchNormOptions{.mode = ml::nn::BatchNormMode::kRunning});
  const auto before = values_of(bn);
  const auto values = without(filled(bn.named_buffers(), 5.f), "running_var");
  expect_error<ml::ValueError>([&] { bn.load_buffers(values); }, "buffer 'running_var' is missing");
  EXPECT_EQ(values_of(bn), before);
}

TEST(AllOrNothingLoad, BuffersWithAnUnknownEntryChangeNothing) {
  ml::nn::BatchNorm1d<float> bn(3,
                                ml::nn::BatchNormOptions{.mode = ml::nn::BatchNormMode::kRunning});
  const auto before = values_of(bn);
  auto values = filled(bn.named_buffers(), 5.f);
  values.insert("running_std", ml::ones<float>({3}));
  expect_error<ml::ValueError>([&] { bn.load_buffers(values); }, "'running_std' is not a buffer");
  EXPECT_EQ(values_of(bn), before);
}

TEST(AllOrNothingLoad, CheckpointOfAnotherModelChangesNothing) {
  const fs::path path = fs::temp_directory_path() / ("metalearn_reliability_other_model_" +
                                                     std::to_string(::getpid()) + ".safetensors");
  ml::Generator gen(9);
  ml::nn::MLP<float> other({2, 8, 1}, gen);
  ml::io::save_safetensors(path, other.named_parameters());
  Mlp m;
  const auto before = values_of(m.model);
  expect_error<ml::ShapeError>(
      [&] { m.model.load_parameters(ml::io::load_safetensors<float>(path)); }, "0.weight");
  EXPECT_EQ(values_of(m.model), before);
  fs::remove(path);
}

struct MetaSgd {
  ml::Generator gen{6};
  ml::nn::MLP<float> model{{1, 4, 1}, gen};
  alg::Maml<float> maml{model, alg::MamlOptions<float>{.learn_inner_lr = true}};
};

TEST(AllOrNothingLoad, MamlMissingLearnedRateChangesNoWeight) {
  MetaSgd m;
  const auto before = values_of(m.maml.meta_parameters());
  const auto values = without(filled(m.maml.meta_parameters(), 0.5f), "lr.2.bias");
  expect_error<ml::ValueError>([&] { m.maml.load_meta_parameters(values); },
                               "Maml::load_meta_parameters: meta-parameter 'lr.2.bias' is "
                               "missing");
  EXPECT_EQ(values_of(m.maml.meta_parameters()), before);
}

TEST(AllOrNothingLoad, MamlMisshapenLastEntryChangesNoWeight) {
  MetaSgd m;
  const auto before = values_of(m.maml.meta_parameters());
  const auto values = reshaped(filled(m.maml.meta_parameters(), 0.5f), "lr.2.bias", {7});
  expect_error<ml::ShapeError>([&] { m.maml.load_meta_parameters(values); }, "lr.2.bias");
  EXPECT_EQ(values_of(m.maml.meta_parameters()), before);
}

TEST(AllOrNothingLoad, MamlUnknownNameChangesNothing) {
  MetaSgd m;
  const auto before = values_of(m.maml.meta_parameters());
  auto values = filled(m.maml.meta_parameters(), 0.5f);
  values.insert("head.weight", ml::ones<float>({1}));
  expect_error<ml::ValueError>([&] { m.maml.load_meta_parameters(values); },
                               "'head.weight' is not a meta-parameter");
  EXPECT_EQ(values_of(m.maml.meta_parameters()), before);
}

TEST(AllOrNothingLoad, MamlNonStrictLoadsThetaAlone) {
  MetaSgd m;
  const auto lr = m.maml.meta_parameters().find("lr.0.weight")->to_vector();
  m.maml.load_meta_parameters(filled(m.model.named_parameters(), 0.25f),
                              ml::nn::LoadMode::kNonStrict);
  EXPECT_EQ(m.maml.meta_parameters().find("lr.0.weight")->to_vector(), lr);
  EXPECT_EQ(m.model.named_parameters().find("0.weight")->to_vector()[0], 0.25f);
}

TEST(AllOrNothingLoad, MamlOuterStateOfOtherParametersChangesNothing) {
  MetaSgd m;
  const auto before = state_of(*m.maml.state().optimizer);
  const auto params = m.maml.meta_parameters().find("0.weight")->to_vector();
  ml::optim::OptimizerState<float> bad;
  bad.step = 3;
  bad.lr = 0.1;
  bad.buffers.insert("0.exp_avg", ml::ones<float>({9, 9}));
  auto state = m.maml.state();
  state.optimizer = bad;
  state.parameters = filled(m.maml.meta_parameters(), 0.5f);
  EXPECT_THROW(m.maml.load_state(state), ml::ShapeError);
  EXPECT_EQ(state_of(*m.maml.state().optimizer), before);
  EXPECT_EQ(m.maml.meta_parameters().find("0.weight")->to_vector(), params);
  EXPECT_EQ(m.maml.steps_taken(), 0);
}

TEST(AllOrNothingLoad, ProtoNetModelLoadIsAllOrNothing) {
  ml::Generator gen(12);
  ml::nn::MLP<float> embedding({4, 8, 5}, gen);
  alg::ProtoNet<float> net(embedding, alg::ProtoNetOptions<float>{.lr = 0.05});
  const auto before = values_of(net.model());
  const auto values = without(filled(net.model().named_parameters(), 1.f), "2.weight");
  expect_error<ml::ValueError>([&] { net.model().load_parameters(values); }, "2.weight");
  EXPECT_EQ(values_of(net.model()), before);
}

}  // namespace
