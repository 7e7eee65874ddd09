// Submodules through the registry: Child handles that follow clone(), the refusal
// of submodules referenced from elsewhere, lookup by name, the state dict with
// buffers and key maps, and one-call save and load of a module.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <metalearn/metalearn.hpp>
#include <string>

namespace ml = metalearn;
namespace nn = metalearn::nn;
using TD = ml::Tensor<double>;

namespace {

/// A module written the LibTorch way: it keeps what register_module returns as
/// members and uses them in forward().
class Net : public nn::Cloneable<Net, double> {
 public:
  using nn::Module<double>::forward;
  explicit Net(ml::Generator& gen)
      : fc_(register_module("fc", std::make_shared<nn::Linear<double>>(3, 4, gen))),
        bn_(register_module("bn",
                            std::make_shared<nn::BatchNorm1d<double>>(
                                4, nn::BatchNormOptions{.mode = nn::BatchNormMode::kRunning}))),
        out_(register_module("out", std::make_shared<nn::Linear<double>>(4, 2, gen))) {}

  TD forward(const TD& x, const nn::ParamDict<double>& params) const override {
    TD h = forward_child(bn_, forward_child(fc_, x, params), params);
    return forward_child(out_, ml::relu(h), params);
  }
  [[nodiscard]] std::string type_name() const override { return "Net"; }

  [[nodiscard]] nn::Child<nn::Linear<double>> fc() const { return fc_; }
  [[nodiscard]] nn::Child<nn::BatchNorm1d<double>> bn() const { return bn_; }

 private:
  nn::Child<nn::Linear<double>> fc_;
  nn::Child<nn::BatchNorm1d<double>> bn_;
  nn::Child<nn::Linear<double>> out_;
};

std::vector<std::vector<double>> state_values(const nn::Module<double>& m) {
  std::vector<std::vector<double>> out;
  for (const auto& [name, t] : m.state_dict()) out.push_back(t.to_vector());
  return out;
}

TEST(ModuleRegistry, CloneOfAModuleHoldingHandlesIsIndependent) {
  ml::Generator gen(1);
  Net net(gen);
  const auto before = state_values(net);
  auto copy = net.deep_copy();
  // The clone's handles reach the clone's own submodules.
  EXPECT_NE(&copy->child(copy->fc()), &net.child(net.fc()));
  EXPECT_NE(&copy->child(copy->bn()), &net.child(net.bn()));
  // Training-mode forwards of the clone update its running statistics only.
  (void)copy->forward(ml::randn<double>({5, 3}, gen));
  EXPECT_EQ(state_values(net), before);
  EXPECT_NE(state_values(*copy), before);
  // Writing the clone's weights leaves the original's alone.
  nn::init::constant(copy->child(copy->fc()).named_parameters().values().front(), 7.0);
  EXPECT_EQ(state_values(net), before);
  // And the clone computes with its own weights.
  const TD x = ml::randn<double>({5, 3}, gen);
  net.eval();
  copy->eval();
  EXPECT_NE(net.forward(x).to_vector(), copy->forward(x).to_vector());
}

TEST(ModuleRegistry, SubmoduleReferencedFromElsewhereIsRefused) {
  ml::Generator gen(2);
  nn::Sequential<double> net;
  auto kept = std::make_shared<nn::Linear<double>>(2, 2, gen);
  try {
    (void)net.push_back(kept);
    FAIL() << "a submodule with another reference was registered";
  } catch (const ml::ValueError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("submodule '0' (Linear) is also referenced from elsewhere"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("nn::Child"), std::string::npos) << what;
  }
  EXPECT_EQ(net.size(), 0U);
  const auto handle = net.push_back(std::move(kept));
  EXPECT_EQ(net.child(handle).type_name(), "Linear");
}

TEST(ModuleRegistry, NamedModulesAndLookupByPath) {
  ml::Generator gen(3);
  nn::ConvNet4 net(nn::ConvNet4Options{.image_size = 28, .ways = 5}, gen);
  const auto all = net.named_modules();
  ASSERT_GE(all.size(), 3U);
  EXPECT_EQ(all[0].first, "");
  EXPECT_EQ(all[0].second, &net);
  EXPECT_EQ(all[1].first, "features");
  EXPECT_EQ(all[2].first, "features.0");
  EXPECT_EQ(all.back().first, "head");
  EXPECT_EQ(net.find_module("features.0")->type_name(), "Conv2d");
  EXPECT_EQ(net.find_module("features.99"), nullptr);
  EXPECT_EQ(net.submodule<nn::Linear<float>>("head").type_name(), "Linear");
  try {
    (void)net.submodule<nn::Linear<float>>("features.0");
    FAIL() << "a Conv2d was returned as a Linear";
  } catch (const ml::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("'features.0' is a Conv2d"), std::string::npos)
        << e.what();
  }
  try {
    (void)net.submodule("features.fc");
    FAIL() << "a missing submodule was found";
  } catch (const ml::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("no submodule 'features.fc' (there are: features, "
                                         "features.0"),
              std::string::npos)
        << e.what();
  }
}

TEST(ModuleRegistry, StateDictHoldsParametersAndBuffers) {
  ml::Generator gen(4);
  Net net(gen);
  const auto state = net.state_dict();
  EXPECT_NE(state.find("fc.weight"), nullptr);
  EXPECT_NE(state.find("bn.running_mean"), nullptr);
  EXPECT_NE(state.find("bn.running_var"), nullptr);
  EXPECT_EQ(state.size(), net.named_parameters().size() + net.named_buffers().size());
}

TEST(ModuleRegistry, LoadStateDictIsAllOrNothing) {
  ml::Generator gen(5);
  Net source(gen);
  (void)source.forward(ml::randn<double>({6, 3}, gen));  // running statistics move
  Net target(gen);
  const auto before = state_values(target);
  nn::ParamDict<double> partial;
  for (const auto& [name, t] : source.state_dict()) {
    if (name != "bn.running_var") partial.insert(name, t.clone());
  }
  EXPECT_THROW(target.load_state_dict(partial), ml::ValueError);
  EXPECT_EQ(state_values(target), before);
  // Non-strict: what is there loads, the rest stays.
  target.load_state_dict(partial, nn::LoadMode::kNonStrict);
  EXPECT_EQ(target.state_dict().find("bn.running_mean")->to_vector(),
            source.state_dict().find("bn.running_mean")->to_vector());
  EXPECT_EQ(target.state_dict().find("bn.running_var")->to_vector(),
            Net(gen).state_dict().find("bn.running_var")->to_vector());
  // Complete: the target becomes the source.
  target.load_state_dict(source.state_dict());
  EXPECT_EQ(state_values(target), state_values(source));
}

TEST(ModuleRegistry, KeyMapLoadsWeightsSavedUnderOtherNames) {
  ml::Generator gen(6);
  Net source(gen);
  nn::ParamDict<double> foreign;  // e.g. a PyTorch model's names
  for (const auto& [name, t] : source.state_dict())
    foreign.insert("model." + std::string(name), t.clone());
  Net target(gen);
  EXPECT_THROW(target.load_state_dict(foreign), ml::ValueError);
  target.load_state_dict(foreign, nn::LoadMode::kStrict,
                         [](std::string_view n) { return std::string(n.substr(6)); });
  EXPECT_EQ(state_values(target), state_values(source));
  // Two names mapped to one is an error, before anything changes.
  Net third(gen);
  const auto before = state_values(third);
  EXPECT_THROW(third.load_state_dict(foreign, nn::LoadMode::kNonStrict,
                                     [](std::string_view) { return std::string("fc.bias"); }),
               ml::ValueError);
  EXPECT_EQ(state_values(third), before);
}

TEST(ModuleRegistry, SaveAndLoadAModuleInOneCall) {
  ml::Generator gen(7);
  Net source(gen);
  (void)source.forward(ml::randn<double>({6, 3}, gen));
  const auto path = std::filesystem::temp_directory_path() /
                    ("metalearn_module_" + std::to_string(::getpid()) + ".safetensors");
  ml::io::save(source, path);
  Net target(gen);
  ml::io::load(target, path);
  std::filesystem::remove(path);
  EXPECT_EQ(state_values(target), state_values(source));
}

}  // namespace
