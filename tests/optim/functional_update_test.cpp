// Differentiable functional updates: values, meta-gradients through the update
// (MAML), learnable and per-parameter (Meta-SGD) learning rates.

#include <gtest/gtest.h>

#include <metalearn/autograd.hpp>
#include <metalearn/nn.hpp>
#include <metalearn/optim.hpp>

namespace ml = metalearn;

namespace {

ml::nn::ParamDict<double> small_params(ml::Generator& gen) {
  ml::nn::ParamDict<double> p;
  p.insert("w", ml::randn<double>(ml::Shape{3, 2}, gen).requires_grad(true));
  p.insert("b", ml::randn<double>(ml::Shape{2}, gen).requires_grad(true));
  return p;
}

ml::Tensor<double> loss_of(const ml::nn::ParamDict<double>& p, const ml::Tensor<double>& x,
                           const ml::Tensor<double>& y) {
  auto h = ml::nn::functional::linear(x, ml::transpose(p.at("w")), p.at("b"));
  return ml::mse_loss(ml::tanh(h), y);
}

}  // namespace

TEST(SgdUpdate, ValuesAndSharedKeys) {
  ml::Generator gen(1);
  auto p = small_params(gen);
  auto g = p.map([](const ml::Tensor<double>& t) { return ml::ones_like(t); });
  auto q = ml::optim::sgd_update(p, g, 0.5);
  EXPECT_TRUE(q.shares_keys_with(p));
  EXPECT_EQ(q.names(), p.names());
  for (ml::Index i = 0; i < 6; ++i) {
    EXPECT_DOUBLE_EQ(q.at("w").data()[i], p.at("w").data()[i] - 0.5);
  }
  // Undefined gradients (allow_unused) leave the parameter unchanged.
  auto r = ml::optim::sgd_update(
      p, std::vector<ml::Tensor<double>>{ml::Tensor<double>(), ml::ones<double>(ml::Shape{2})},
      0.5);
  EXPECT_EQ(r.at("w").impl(), p.at("w").impl());
}

TEST(SgdUpdate, RejectsMismatchedGradients) {
  ml::Generator gen(1);
  auto p = small_params(gen);
  EXPECT_THROW(ml::optim::sgd_update(p, std::vector<ml::Tensor<double>>{}, 0.1), ml::ValueError);
  EXPECT_THROW(
      ml::optim::sgd_update(p,
                            std::vector<ml::Tensor<double>>{ml::ones<double>(ml::Shape{2}),
                                                            ml::ones<double>(ml::Shape{2})},
                            0.1),
      ml::ShapeError);
  ml::nn::ParamDict<double> lrs;
  lrs.insert("w", ml::ones<double>(ml::Shape{3, 2}));
  EXPECT_THROW(ml::optim::sgd_update(p, p.values(), lrs), ml::ValueError);
}

TEST(SgdUpdate, MetaGradientThroughInnerStepMatchesFiniteDifferences) {
  // theta' = theta - a * grad L_s(theta); the meta-loss L_q(theta') as a function of
  // theta must pass gradcheck (this exercises create_graph through the update).
  ml::Generator gen(7);
  auto xs = ml::randn<double>(ml::Shape{5, 3}, gen);
  auto ys = ml::randn<double>(ml::Shape{5, 2}, gen);
  auto xq = ml::randn<double>(ml::Shape{4, 3}, gen);
  auto yq = ml::randn<double>(ml::Shape{4, 2}, gen);
  auto meta_loss = [&](const std::vector<ml::Tensor<double>>& in) {
    ml::autograd::EnableGradGuard enable;  // the inner gradient also in gradcheck's numerical pass
    ml::nn::ParamDict<double> p;
    p.insert("w", in[0]);
    p.insert("b", in[1]);
    auto g = ml::optim::gradients(loss_of(p, xs, ys), p, {.create_graph = true});
    auto fast = ml::optim::sgd_update(p, g, 0.3);
    fast = ml::optim::sgd_update(
        fast, ml::optim::gradients(loss_of(fast, xs, ys), fast, {.create_graph = true}), 0.3);
    return loss_of(fast, xq, yq);
  };
  auto p = small_params(gen);
  auto r = ml::autograd::gradcheck(meta_loss, p.values());
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(SgdUpdate, FirstOrderDiffersFromSecondOrder) {
  ml::Generator gen(8);
  auto xs = ml::randn<double>(ml::Shape{5, 3}, gen);
  auto ys = ml::randn<double>(ml::Shape{5, 2}, gen);
  auto p = small_params(gen);
  auto meta_grad = [&](bool create_graph) {
    auto g = ml::optim::gradients(loss_of(p, xs, ys), p, {.create_graph = create_graph});
    auto fast = ml::optim::sgd_update(p, g, 0.5);
    return ml::autograd::grad({loss_of(fast, xs, ys)}, p.values())[0].to_vector();
  };
  auto second = meta_grad(true);
  auto first = meta_grad(false);
  double diff = 0;
  for (std::size_t i = 0; i < first.size(); ++i) diff += std::abs(first[i] - second[i]);
  EXPECT_GT(diff, 1e-6);
}

TEST(SgdUpdate, LearnableScalarLrGetsItsGradient) {
  // d/da L(theta - a g) = -<grad L(theta'), g>.
  ml::Generator gen(9);
  auto xs = ml::randn<double>(ml::Shape{5, 3}, gen);
  auto ys = ml::randn<double>(ml::Shape{5, 2}, gen);
  auto p = small_params(gen);
  auto lr = ml::scalar<double>(0.2).requires_grad(true);
  auto g = ml::optim::gradients(loss_of(p, xs, ys), p);
  auto fast = ml::optim::sgd_update(p, g, lr);
  auto lq = loss_of(fast, xs, ys);
  auto dlr = ml::autograd::grad({lq}, {lr})[0].item();

  auto fast_const = ml::optim::sgd_update(p, g, 0.2).detach();
  auto leaves =
      fast_const.map([](const ml::Tensor<double>& t) { return t.detach().requires_grad(true); });
  auto gq = ml::autograd::grad({loss_of(leaves, xs, ys)}, leaves.values());
  double expected = 0;
  const auto gv = g.values();
  for (std::size_t k = 0; k < gq.size(); ++k) {
    for (ml::Index i = 0; i < gq[k].numel(); ++i) expected -= gq[k].data()[i] * gv[k].data()[i];
  }
  EXPECT_NEAR(dlr, expected, 1e-12);
}

TEST(SgdUpdate, MetaSgdPerParameterLrPassesGradcheck) {
  ml::Generator gen(10);
  auto xs = ml::randn<double>(ml::Shape{5, 3}, gen);
  auto ys = ml::randn<double>(ml::Shape{5, 2}, gen);
  auto p = small_params(gen);
  auto lrs = ml::optim::make_lr_dict(p, 0.1);
  EXPECT_EQ(lrs.at("w").shape(), p.at("w").shape());
  EXPECT_TRUE(lrs.at("w").requires_grad());
  auto f = [&](const std::vector<ml::Tensor<double>>& in) {
    ml::autograd::EnableGradGuard enable;  // the inner gradient also in gradcheck's numerical pass
    ml::nn::ParamDict<double> lr;
    lr.insert("w", in[0]);
    lr.insert("b", in[1]);
    auto g = ml::optim::gradients(loss_of(p, xs, ys), p, {.create_graph = true});
    return loss_of(ml::optim::sgd_update(p, g, lr), xs, ys);
  };
  auto r = ml::autograd::gradcheck(f, lrs.values());
  EXPECT_TRUE(r.ok) << r.message;
  auto rr = ml::autograd::gradgradcheck(f, lrs.values());
  EXPECT_TRUE(rr.ok) << rr.message;
}

TEST(SgdUpdate, WorksOnModuleParamsAndKeepsModuleForward) {
  ml::Generator gen(11);
  ml::nn::MLP<double> model({2, 6, 1}, gen);
  auto x = ml::randn<double>(ml::Shape{8, 2}, gen);
  auto y = ml::randn<double>(ml::Shape{8, 1}, gen);
  auto params = model.named_parameters();
  auto before = ml::mse_loss(model.forward(x, params), y).item();
  auto fast = params;
  for (int s = 0; s < 20; ++s) {
    auto loss = ml::mse_loss(model.forward(x, fast), y);
    fast = ml::optim::sgd_update(fast, ml::optim::gradients(loss, fast), 0.05);
  }
  auto after = ml::mse_loss(model.forward(x, fast), y).item();
  EXPECT_LT(after, before);
  // The module's own parameters are untouched.
  EXPECT_DOUBLE_EQ(ml::mse_loss(model.forward(x), y).item(), before);
}
