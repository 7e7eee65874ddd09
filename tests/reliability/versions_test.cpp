// In-place writes to tensors a recorded graph still reads: every storage counts its
// in-place writes, and backward refuses to differentiate through an op whose input
// or saved output changed since it was recorded.
#include <memory>

#include "reliability.hpp"

namespace reliability {
namespace {

using TD = ml::Tensor<double>;

TEST(Versions, WriteIntoASavedInputMakesBackwardThrow) {
  TD w = ml::full<double>({3}, 2.0).requires_grad(true);
  TD x = ml::full<double>({3}, 5.0);
  TD loss = ml::sum(ml::mul(w, x));  // d/dw reads x
  x.data()[1] = 7.0;
  x.bump_version();
  expect_error<ml::AutogradError>([&] { loss.backward(); },
                                  "backward of mul: its input 1 was written in place");
  EXPECT_FALSE(w.grad().defined());  // nothing accumulated
}

TEST(Versions, WriteIntoASavedOutputMakesBackwardThrow) {
  TD x = ml::full<double>({4}, 0.5).requires_grad(true);
  TD y = ml::exp(x);  // d/dx exp(x) reads the saved output
  y.data()[0] = 0.0;
  y.bump_version();
  expect_error<ml::AutogradError>([&] { y.backward(ml::ones<double>({4})); },
                                  "backward of exp: its saved output was written in place");
}

TEST(Versions, OptimizerStepBetweenForwardAndBackwardIsCaught) {
  ml::Generator gen(1);
  ml::nn::Linear<double> layer(3, 2, gen);
  ml::optim::SGD<double> sgd(layer.parameters(), ml::optim::SGDOptions{.lr = 0.1});
  TD x = ml::full<double>({4, 3}, 1.0);
  TD loss = ml::sum(ml::mul(layer.forward(x), layer.forward(x)));
  ml::sum(layer.forward(x)).backward();
  sgd.step();  // changes the weights the first loss's graph still reads
  expect_error<ml::AutogradError>([&] { loss.backward(); }, "was written in place");
}

TEST(Versions, ForwardAgainAfterTheWriteGivesTheGradientOfTheNewValues) {
  TD w = ml::full<double>({2}, 1.0).requires_grad(true);
  TD x = ml::full<double>({2}, 3.0);
  TD stale = ml::sum(ml::mul(w, x));
  x.data()[0] = 4.0;
  x.bump_version();
  ml::sum(ml::mul(w, x)).backward();
  EXPECT_EQ(w.grad().to_vector(), (std::vector<double>{4.0, 3.0}));
  expect_error<ml::AutogradError>([&] { stale.backward(); }, "backward of mul");
}

TEST(Versions, ViewsShareTheirStoragesVersion) {
  TD a = ml::zeros<double>({2, 3});
  TD flat = ml::reshape(a, ml::Shape{6});
  TD cut = a.detach();
  const auto before = a.version();
  flat.bump_version();
  EXPECT_EQ(a.version(), before + 1);
  EXPECT_EQ(cut.version(), before + 1);
}

TEST(Versions, ALibraryWriteCountsItself) {
  ml::Generator gen(2);
  ml::nn::Linear<double> layer(2, 2, gen);
  const TD weight = layer.named_parameters().values().front();
  const auto before = weight.version();
  ml::nn::ParamDict<double> values;
  for (const auto& [name, t] : layer.named_parameters()) values.insert(name, t.clone());
  layer.load_parameters(values);
  EXPECT_GT(weight.version(), before);
  const auto loaded = weight.version();
  ml::nn::init::constant(weight, 0.5);
  EXPECT_GT(weight.version(), loaded);
}

TEST(Versions, WritingAnInputTheGraphNoLongerNeedsIsFine) {
  // A graph freed by its backward pass is not checked again.
  TD w = ml::full<double>({2}, 1.0).requires_grad(true);
  TD x = ml::full<double>({2}, 3.0);
  ml::sum(ml::mul(w, x)).backward();
  x.bump_version();
  EXPECT_EQ(w.grad().to_vector(), (std::vector<double>{3.0, 3.0}));
}

TEST(Versions, StorageOfTheCallersIsNotTracked) {
  std::shared_ptr<double[]> mine(new double[3]{1.0, 2.0, 3.0});
  TD t = TD::from_storage(mine, ml::Shape{3});
  t.bump_version();
  EXPECT_EQ(t.version(), 0U);
}

}  // namespace
}  // namespace reliability
