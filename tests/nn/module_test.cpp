// Module: registration, naming, clone, functional forward with fast weights, printing.

#include <gtest/gtest.h>

#include <metalearn/autograd.hpp>
#include <metalearn/nn.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace ml = metalearn;
namespace nn = metalearn::nn;

namespace {

/// A small hand-written module with a parameter, a buffer and a child.
class Custom : public nn::Cloneable<Custom, double> {
 public:
  using nn::Module<double>::forward;
  explicit Custom(ml::Generator& gen) {
    register_parameter("scale", ml::ones<double>(ml::Shape{3}));
    register_buffer("count", ml::zeros<double>(ml::Shape{1}));
    register_module("fc", std::make_shared<nn::Linear<double>>(3, 2, gen));
  }
  ml::Tensor<double> forward(const ml::Tensor<double>& x,
                             const nn::ParamDict<double>& params) const override {
    return forward_child(0, ml::mul(x, param(params, 0)), params);
  }
  std::string type_name() const override { return "Custom"; }
};

}  // namespace

TEST(Module, RegistrationErrors) {
  ml::Generator gen(0);
  Custom m(gen);
  EXPECT_THROW(m.register_parameter("scale", ml::ones<double>(ml::Shape{1})), ml::ValueError);
  EXPECT_THROW(m.register_parameter("fc", ml::ones<double>(ml::Shape{1})), ml::ValueError);
  EXPECT_THROW(m.register_buffer("count", ml::ones<double>(ml::Shape{1})), ml::ValueError);
  EXPECT_THROW(m.register_parameter("", ml::ones<double>(ml::Shape{1})), ml::ValueError);
  EXPECT_THROW(m.register_parameter("a.b", ml::ones<double>(ml::Shape{1})), ml::ValueError);
  EXPECT_THROW(m.register_parameter("a b", ml::ones<double>(ml::Shape{1})), ml::ValueError);
  EXPECT_THROW(m.register_parameter("u", ml::Tensor<double>()), ml::ValueError);
  EXPECT_THROW(m.register_module("fc", std::make_shared<nn::ReLU<double>>()), ml::ValueError);
  EXPECT_THROW(m.register_module<nn::ReLU<double>>("none", nullptr), ml::ValueError);
  auto nonleaf = ml::mul_scalar(ml::ones<double>(ml::Shape{1}).requires_grad(true), 2.0);
  EXPECT_THROW(m.register_parameter("nl", nonleaf), ml::ValueError);
  try {
    m.register_parameter("fc", ml::ones<double>(ml::Shape{1}));
  } catch (const ml::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("Custom::register_parameter"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("'fc'"), std::string::npos);
  }
  // The failed registrations left the module unchanged.
  EXPECT_EQ(m.named_parameters().names(),
            (std::vector<std::string>{"scale", "fc.weight", "fc.bias"}));
  EXPECT_EQ(m.named_buffers().names(), (std::vector<std::string>{"count"}));
}

TEST(Module, NamedParametersOrderAndSharing) {
  ml::Generator gen(1);
  nn::MLP model({1, 40, 40, 1}, gen);  // MLP<float> by default
  static_assert(std::is_same_v<decltype(model), nn::MLP<float>>);
  auto named = model.named_parameters();
  EXPECT_EQ(named.names(), (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias",
                                                     "4.weight", "4.bias"}));
  EXPECT_EQ(named.at("2.weight").shape(), (ml::Shape{40, 40}));
  EXPECT_EQ(model.num_parameters(), 40 + 40 + 1600 + 40 + 40 + 1);
  // The dict holds the module's leaves: same storage, requires grad.
  auto params = model.parameters();
  ASSERT_EQ(params.size(), 6u);
  for (std::size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(params[i].impl(), named.values()[i].impl());
    EXPECT_TRUE(params[i].requires_grad());
    EXPECT_TRUE(params[i].is_leaf());
  }
  // Names are stable across calls.
  EXPECT_EQ(model.named_parameters().names(), named.names());
}

TEST(Module, ConvNet4Names) {
  ml::Generator gen(2);
  nn::ConvNet4 net(nn::ConvNet4Options{.ways = 5}, gen);
  auto names = net.named_parameters().names();
  ASSERT_EQ(names.size(), 4u * 4u + 2u);
  EXPECT_EQ(names[0], "features.0.weight");
  EXPECT_EQ(names[1], "features.0.bias");
  EXPECT_EQ(names[2], "features.1.weight");
  EXPECT_EQ(names[3], "features.1.bias");
  EXPECT_EQ(names[4], "features.4.weight");
  EXPECT_EQ(names[16], "head.weight");
  EXPECT_EQ(names[17], "head.bias");
  EXPECT_EQ(net.feature_dim(), 64);
  auto x = ml::randn<float>(ml::Shape{3, 1, 28, 28}, gen);
  EXPECT_EQ(net.forward(x).shape(), (ml::Shape{3, 5}));
  EXPECT_EQ(net.embed(x).shape(), (ml::Shape{3, 64}));
  nn::ConvNet4 backbone(gen);
  EXPECT_EQ(backbone.forward(x).shape(), (ml::Shape{3, 64}));
  nn::ConvNet4 mini(nn::ConvNet4Options{.in_channels = 3, .hidden = 8, .image_size = 84}, gen);
  EXPECT_EQ(mini.feature_dim(), 8 * 5 * 5);
  EXPECT_THROW(nn::ConvNet4(nn::ConvNet4Options{.image_size = 8}, gen), ml::ValueError);
}

TEST(Module, CloneIsIndependent) {
  ml::Generator gen(3);
  Custom m(gen);
  auto copy = m.deep_copy();
  auto pm = m.named_parameters();
  auto pc = copy->named_parameters();
  ASSERT_EQ(pm.names(), pc.names());
  for (const auto& name : pm.names()) {
    EXPECT_NE(pm.at(name).data(), pc.at(name).data()) << name;
    EXPECT_EQ(pm.at(name).to_vector(), pc.at(name).to_vector()) << name;
    EXPECT_TRUE(pc.at(name).requires_grad());
  }
  EXPECT_NE(m.named_buffers().at("count").data(), copy->named_buffers().at("count").data());
  // Changing the copy leaves the original alone.
  pc.at("fc.weight").data()[0] += 1.0;
  EXPECT_NE(pm.at("fc.weight").data()[0], pc.at("fc.weight").data()[0]);
  auto x = ml::randn<double>(ml::Shape{4, 3}, gen);
  EXPECT_NE(m.forward(x).to_vector(), copy->forward(x).to_vector());
  // Gradients are not shared either.
  ml::sum(copy->forward(x)).backward();
  EXPECT_TRUE(pc.at("fc.weight").grad().defined());
  EXPECT_FALSE(pm.at("fc.weight").grad().defined());
  copy->zero_grad();
  EXPECT_FALSE(pc.at("fc.weight").grad().defined());
  // clone() through the base pointer gives the same structure.
  std::unique_ptr<nn::Module<double>> base = m.clone();
  EXPECT_EQ(base->named_parameters().names(), pm.names());
  EXPECT_EQ(base->forward(x).to_vector(), m.forward(x).to_vector());
}

TEST(Module, ConvNetCloneMatchesOriginal) {
  ml::Generator gen(4);
  nn::ConvNet4<double> net(nn::ConvNet4Options{.hidden = 4, .ways = 3}, gen);
  auto copy = net.deep_copy();
  auto x = ml::randn<double>(ml::Shape{2, 1, 28, 28}, gen);
  EXPECT_EQ(net.forward(x).to_vector(), copy->forward(x).to_vector());
  EXPECT_EQ(copy->feature_dim(), net.feature_dim());
}

namespace {

// The values of `out`, of the gradients of sum(out^2) with respect to `params`, and
// of a second derivative (of the sum of the first gradient), in one vector.
std::vector<float> value_and_derivative_bits(const ml::Tensor<float>& out,
                                             const std::vector<ml::Tensor<float>>& params) {
  std::vector<float> bits = out.detach().to_vector();
  const auto g = ml::autograd::grad({ml::sum(ml::square(out))}, params, {.create_graph = true});
  for (const auto& t : g) {
    const auto v = t.detach().to_vector();
    bits.insert(bits.end(), v.begin(), v.end());
  }
  for (const auto& t : ml::autograd::grad({ml::sum(g[0])}, params, {.allow_unused = true})) {
    if (!t.defined()) continue;
    const auto v = t.to_vector();
    bits.insert(bits.end(), v.begin(), v.end());
  }
  return bits;
}

}  // namespace

// Sequential runs a ReLU followed by a max-pool as pool then ReLU; ConvNet4's blocks
// written out in the usual order must give the same logits and derivatives.
TEST(Module, ConvNet4MatchesItsBlocksWrittenOut) {
  ml::Generator gen(14);
  nn::ConvNet4<float> net(nn::ConvNet4Options{.hidden = 6, .ways = 3}, gen);
  const auto p = net.named_parameters();
  const auto x = ml::randn<float>(ml::Shape{5, 1, 28, 28}, gen);
  namespace F = nn::functional;
  ml::Tensor<float> h = x;
  for (int b = 0; b < 4; ++b) {
    const std::string conv = "features." + std::to_string(4 * b);
    const std::string bn = "features." + std::to_string(4 * b + 1);
    h = F::conv2d(h, p.at(conv + ".weight"), p.at(conv + ".bias"), 1, 1);
    h = F::batch_norm(h, p.at(bn + ".weight"), p.at(bn + ".bias"), ml::Tensor<float>(),
                      ml::Tensor<float>(), true);
    h = F::max_pool2d(F::relu(h), 2);
  }
  const auto logits = F::linear(F::flatten(h, 1), p.at("head.weight"), p.at("head.bias"));
  EXPECT_EQ(value_and_derivative_bits(net.forward(x, p), p.values()),
            value_and_derivative_bits(logits, p.values()));
}

// The same with overlapping windows (kernel 3, stride 2) and ties: a window's
// maximum is shared by two windows, and some windows hold only negative values.
TEST(Module, SequentialReluThenOverlappingPoolMatchesTheWrittenOrder) {
  ml::Generator gen(15);
  nn::Sequential<float> net;
  net.push_back(std::make_shared<nn::Conv2d<float>>(2, 3, 3, gen, 1, 1));
  net.push_back(std::make_shared<nn::ReLU<float>>());
  net.push_back(std::make_shared<nn::MaxPool2d<float>>(3, 2));
  const auto p = net.named_parameters();
  auto x = ml::randn<float>(ml::Shape{2, 2, 9, 9}, gen);
  x = ml::sub(x, ml::full<float>(x.shape(), 0.75f));  // mostly negative pre-activations
  namespace F = nn::functional;
  const auto written =
      F::max_pool2d(F::relu(F::conv2d(x, p.at("0.weight"), p.at("0.bias"), 1, 1)), 3, 2);
  EXPECT_EQ(value_and_derivative_bits(net.forward(x, p), p.values()),
            value_and_derivative_bits(written, p.values()));
}

TEST(Module, FunctionalForwardEqualsModuleForward) {
  ml::Generator gen(5);
  nn::MLP<double> model({3, 8, 2}, gen, nn::Activation::kTanh);
  auto x = ml::randn<double>(ml::Shape{5, 3}, gen);
  auto p = model.named_parameters();
  namespace F = nn::functional;
  auto expected = F::linear(F::tanh(F::linear(x, p.at("0.weight"), p.at("0.bias"))),
                            p.at("2.weight"), p.at("2.bias"));
  EXPECT_EQ(model.forward(x).to_vector(), expected.to_vector());
  EXPECT_EQ(model.forward(x, p).to_vector(), expected.to_vector());
  EXPECT_EQ(model(x).to_vector(), expected.to_vector());
}

TEST(Module, ForwardUsesTheGivenParameters) {
  ml::Generator gen(6);
  nn::Linear<double> fc(3, 2, gen);
  auto x = ml::randn<double>(ml::Shape{4, 3}, gen);
  nn::ParamDict<double> fast;
  fast.insert("weight", ml::zeros<double>(ml::Shape{2, 3}));
  fast.insert("bias", ml::from_vector<double>({1.0, -2.0}));
  auto y = fc.forward(x, fast);
  for (ml::Index i = 0; i < 4; ++i) {
    EXPECT_EQ(y.at(i, 0), 1.0);
    EXPECT_EQ(y.at(i, 1), -2.0);
  }
  // Gradients flow to the fast weights, not to the module's leaves.
  auto w = ml::randn<double>(ml::Shape{2, 3}, gen).requires_grad(true);
  fast.set("weight", w);
  ml::sum(fc.forward(x, fast)).backward();
  EXPECT_TRUE(w.grad().defined());
  EXPECT_FALSE(fc.weight().grad().defined());
}

TEST(Module, ForwardWithMissingOrMisshapenParameterThrows) {
  ml::Generator gen(7);
  nn::MLP<double> model({3, 4, 2}, gen);
  auto x = ml::randn<double>(ml::Shape{2, 3}, gen);
  auto p = model.named_parameters();
  nn::ParamDict<double> missing;
  for (const auto& [name, t] : p) {
    if (name != "2.bias") missing.insert(name, t);
  }
  try {
    (void)model.forward(x, missing);
    FAIL() << "expected ValueError";
  } catch (const ml::ValueError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Linear::forward"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'2.bias'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  }
  auto wrong = p;
  wrong.set("0.weight", ml::zeros<double>(ml::Shape{3, 4}));
  try {
    (void)model.forward(x, wrong);
    FAIL() << "expected ShapeError";
  } catch (const ml::ShapeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'0.weight'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[3, 4]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4, 3]"), std::string::npos) << msg;
  }
}

TEST(Module, LoadParametersCopiesValues) {
  ml::Generator gen(8);
  nn::MLP<float> a({2, 3, 1}, gen);
  nn::MLP<float> b({2, 3, 1}, gen);
  b.load_parameters(a.named_parameters());
  auto x = ml::randn<float>(ml::Shape{4, 2}, gen);
  EXPECT_EQ(a.forward(x).to_vector(), b.forward(x).to_vector());
  EXPECT_NE(a.parameters()[0].data(), b.parameters()[0].data());
  nn::MLP<float> c({2, 4, 1}, gen);
  EXPECT_THROW(c.load_parameters(a.named_parameters()), ml::ShapeError);
}

TEST(Module, SameSeedSameModel) {
  ml::Generator g1(42), g2(42), g3(43);
  nn::ConvNet4<float> a(nn::ConvNet4Options{.hidden = 8, .ways = 5}, g1);
  nn::ConvNet4<float> b(nn::ConvNet4Options{.hidden = 8, .ways = 5}, g2);
  nn::ConvNet4<float> c(nn::ConvNet4Options{.hidden = 8, .ways = 5}, g3);
  const auto pa = a.parameters(), pb = b.parameters(), pc = c.parameters();
  bool any_diff = false;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].to_vector(), pb[i].to_vector());
    any_diff = any_diff || pa[i].to_vector() != pc[i].to_vector();
  }
  EXPECT_TRUE(any_diff);
}

TEST(Module, PrettyPrinter) {
  ml::Generator gen(9);
  nn::MLP model({1, 40, 1}, gen);
  std::ostringstream os;
  os << model;
  EXPECT_EQ(os.str(),
            "MLP(\n"
            "  (0): Linear(in=1, out=40, bias=true)\n"
            "  (1): ReLU()\n"
            "  (2): Linear(in=40, out=1, bias=true)\n"
            ")");
  nn::ConvNet4 net(gen);
  const std::string s = net.to_string();
  EXPECT_NE(s.find("ConvNet4(in_channels=1, hidden=64"), std::string::npos) << s;
  EXPECT_NE(s.find("    (0): Conv2d(1, 64, kernel=3, stride=1, padding=1, bias=true)"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("(1): BatchNorm2d(64, mode=transductive"), std::string::npos) << s;
}

TEST(Module, SequentialComposes) {
  ml::Generator gen(10);
  nn::Sequential<double> seq;
  seq.push_back(std::make_shared<nn::Linear<double>>(2, 3, gen));
  seq.push_back(std::make_shared<nn::Sigmoid<double>>());
  seq.push_back(std::make_shared<nn::Linear<double>>(3, 1, gen, false));
  EXPECT_EQ(seq.size(), 3u);
  EXPECT_EQ(seq.named_parameters().names(),
            (std::vector<std::string>{"0.weight", "0.bias", "2.weight"}));
  auto x = ml::randn<double>(ml::Shape{4, 2}, gen);
  auto p = seq.named_parameters();
  auto expected = seq[2].forward(seq[1].forward(seq[0].forward(x)));
  EXPECT_EQ(seq.forward(x).to_vector(), expected.to_vector());
}

TEST(Module, TrainEvalPropagates) {
  ml::Generator gen(11);
  nn::ConvNet4<float> net(nn::ConvNet4Options{.hidden = 4}, gen);
  EXPECT_TRUE(net.is_training());
  net.eval();
  for (const auto& [name, child] : net.named_children()) EXPECT_FALSE(child->is_training()) << name;
  net.train();
  EXPECT_TRUE(net.named_children()[0].second->is_training());
}
