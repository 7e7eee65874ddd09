// Every layer's forward and backward pass passes gradcheck and gradgradcheck in double.

#include <gtest/gtest.h>

#include <metalearn/autograd.hpp>
#include <metalearn/nn.hpp>

namespace ml = metalearn;
namespace nn = metalearn::nn;
namespace F = metalearn::nn::functional;
using TensorD = ml::Tensor<double>;
using Inputs = std::vector<TensorD>;

namespace {

void expect_grad_and_gradgrad(const ml::autograd::DifferentiableFunction& f, const Inputs& in) {
  auto r1 = ml::autograd::gradcheck(f, in);
  EXPECT_TRUE(r1.ok) << r1.message;
  auto r2 = ml::autograd::gradgradcheck(f, in);
  EXPECT_TRUE(r2.ok) << r2.message;
}

/// f(x, params...) = module.forward(x, params) with every parameter an input, so
/// the check covers the gradients w.r.t. the input and all parameters.
void check_module(const nn::Module<double>& m, const TensorD& x, int step = -1) {
  const auto named = m.named_parameters();
  Inputs in{x};
  for (const auto& t : named.values()) in.push_back(t.detach());
  auto f = [&m, named, step](const Inputs& args) {
    auto fast = named.with_values(Inputs(args.begin() + 1, args.end()));
    if (step < 0) return m.forward(args[0], fast);
    const nn::ForwardScope scope({.step = step});
    return m.forward(args[0], fast);
  };
  expect_grad_and_gradgrad(f, in);
}

}  // namespace

TEST(Gradcheck, LinearFunctionalAndModule) {
  ml::Generator gen(1);
  auto x = ml::randn<double>(ml::Shape{3, 4}, gen);
  auto w = ml::randn<double>(ml::Shape{2, 4}, gen);
  auto b = ml::randn<double>(ml::Shape{2}, gen);
  expect_grad_and_gradgrad([](const Inputs& a) { return F::linear(a[0], a[1], a[2]); }, {x, w, b});
  // N-D input.
  auto x3 = ml::randn<double>(ml::Shape{2, 3, 4}, gen);
  expect_grad_and_gradgrad([](const Inputs& a) { return F::linear(a[0], a[1]); }, {x3, w});
  check_module(nn::Linear<double>(4, 2, gen), x);
}

TEST(Gradcheck, Conv2d) {
  ml::Generator gen(2);
  auto x = ml::randn<double>(ml::Shape{2, 2, 5, 5}, gen);
  check_module(nn::Conv2d<double>(2, 3, 3, gen, 1, 1), x);
  check_module(nn::Conv2d<double>(2, 2, 3, gen, 2, 0), x);
  check_module(nn::Conv2d<double>(2, 2, 2, gen, 1, 0, false), x);
}

TEST(Gradcheck, MaxPool2d) {
  ml::Generator gen(3);
  auto x = ml::randn<double>(ml::Shape{2, 2, 4, 4}, gen);
  expect_grad_and_gradgrad([](const Inputs& a) { return F::max_pool2d(a[0], 2); }, {x});
  expect_grad_and_gradgrad([](const Inputs& a) { return F::max_pool2d(a[0], 3, 1); }, {x});
  auto odd = ml::randn<double>(ml::Shape{1, 1, 5, 5}, gen);
  expect_grad_and_gradgrad([](const Inputs& a) { return F::max_pool2d(a[0], 2); }, {odd});
}

TEST(Gradcheck, BatchNormFunctionalTraining) {
  ml::Generator gen(4);
  for (const ml::Shape& s : {ml::Shape{5, 3}, ml::Shape{4, 3, 2}, ml::Shape{3, 3, 2, 2}}) {
    auto x = ml::randn<double>(s, gen);
    auto w = ml::randn<double>(ml::Shape{3}, gen);
    auto b = ml::randn<double>(ml::Shape{3}, gen);
    expect_grad_and_gradgrad(
        [](const Inputs& a) {
          return F::batch_norm(a[0], a[1], a[2], TensorD(), TensorD(), true, 0.1, 1e-5);
        },
        {x, w, b});
    // Without affine parameters.
    expect_grad_and_gradgrad(
        [](const Inputs& a) {
          return F::batch_norm(a[0], TensorD(), TensorD(), TensorD(), TensorD(), true, 0.1, 1e-5);
        },
        {x});
  }
}

// Batch norm's backward under create_graph records two ops of their own: the input
// gradient of (x, g, weight) and the weight gradient of (x, g). Each is checked as a
// function with its statistics recomputed from x; the first-order check runs their
// fused backward, the second-order one the differentiable formulas recorded when that
// backward is itself differentiated.
TEST(Gradcheck, BatchNormBackwardOps) {
  namespace D = metalearn::detail;
  ml::Generator gen(14);
  for (const ml::Shape& s : {ml::Shape{5, 2}, ml::Shape{3, 2, 3}, ml::Shape{3, 2, 2, 3}}) {
    auto x = ml::randn<double>(s, gen);
    auto g = ml::randn<double>(s, gen);
    auto w = ml::randn<double>(ml::Shape{2}, gen);
    expect_grad_and_gradgrad(
        [](const Inputs& a) {
          return D::batch_norm_input_grad(D::batch_norm_stats(a[0], 1e-5), a[0], a[1], a[2]);
        },
        {x, g, w});
    expect_grad_and_gradgrad(
        [](const Inputs& a) {
          return D::batch_norm_input_grad(D::batch_norm_stats(a[0], 1e-5), a[0], a[1], TensorD());
        },
        {x, g});
    expect_grad_and_gradgrad(
        [](const Inputs& a) {
          return D::batch_norm_weight_grad(D::batch_norm_stats(a[0], 1e-5), a[0], a[1]);
        },
        {x, g});
    // As batch norm's backward records them: the weight gradient with its values and
    // channel sums from the fused pass, and the bias gradient with its values.
    expect_grad_and_gradgrad(
        [](const Inputs& a) {
          const auto st = D::batch_norm_stats(a[0], 1e-5);
          TensorD vw;
          auto sums = std::make_shared<D::ChannelGradSums>();
          D::batch_norm_backward_values(*st, a[0], a[1], TensorD(), nullptr, &vw, nullptr,
                                        sums.get());
          return D::batch_norm_weight_grad(st, a[0], a[1], vw, std::move(sums));
        },
        {x, g});
    expect_grad_and_gradgrad(
        [x](const Inputs& a) {
          const auto st = D::batch_norm_stats(x, 1e-5);
          TensorD vb;
          D::batch_norm_backward_values(*st, x, a[0], TensorD(), nullptr, nullptr, &vb);
          return D::batch_norm_bias_grad(a[0], vb);
        },
        {g});
  }
}

// Third derivatives of a batch norm w.r.t. its input and weight: the gradient of a
// second derivative runs the differentiable formulas of the backward ops' backward.
TEST(Gradcheck, BatchNormThirdOrder) {
  ml::Generator gen(15);
  auto x = ml::randn<double>(ml::Shape{4, 2, 2, 2}, gen);
  auto w = ml::randn<double>(ml::Shape{2}, gen);
  auto r = ml::randn<double>(ml::Shape{4, 2, 2, 2}, gen);
  // f(x, w) = d/dx of sum(tanh(bn(x)) * r) . r: a first derivative; its gradgradcheck
  // differentiates the batch norm three times.
  auto f = [r](const Inputs& a) {
    // The numerical checks call f without a graph; the inner gradient needs one.
    ml::autograd::EnableGradGuard enable;
    auto xr = a[0].requires_grad() ? a[0] : a[0].detach().requires_grad(true);
    auto y = F::batch_norm(xr, a[1], TensorD(), TensorD(), TensorD(), true, 0.1, 1e-5);
    auto loss = ml::sum(ml::mul(ml::tanh(y), r));
    auto gx = ml::autograd::grad({loss}, {xr}, {.create_graph = true})[0];
    return ml::sum(ml::mul(gx, r));
  };
  expect_grad_and_gradgrad(f, {x, w});
}

TEST(Gradcheck, BatchNormFunctionalEvaluation) {
  ml::Generator gen(5);
  auto x = ml::randn<double>(ml::Shape{3, 2, 2, 2}, gen);
  auto rm = ml::randn<double>(ml::Shape{2}, gen);
  auto rv = ml::uniform<double>(ml::Shape{2}, gen, 0.5, 2.0);
  auto w = ml::randn<double>(ml::Shape{2}, gen);
  auto b = ml::randn<double>(ml::Shape{2}, gen);
  expect_grad_and_gradgrad(
      [rm, rv](const Inputs& a) {
        return F::batch_norm(a[0], a[1], a[2], rm, rv, false, 0.1, 1e-5);
      },
      {x, w, b});
}

TEST(Gradcheck, BatchNormModules) {
  ml::Generator gen(6);
  auto x4 = ml::randn<double>(ml::Shape{3, 2, 3, 3}, gen);
  check_module(nn::BatchNorm2d<double>(2), x4);
  auto x2 = ml::randn<double>(ml::Shape{4, 3}, gen);
  check_module(nn::BatchNorm1d<double>(3), x2);
  nn::BatchNorm2d<double> per_step(
      2, nn::BatchNormOptions{.mode = nn::BatchNormMode::kPerStep, .steps = 3});
  per_step.eval();  // use (constant) running statistics of step 1
  check_module(per_step, x4, 1);
}

TEST(Gradcheck, Activations) {
  ml::Generator gen(7);
  auto x = ml::randn<double>(ml::Shape{3, 4}, gen);
  check_module(nn::ReLU<double>(), x);
  check_module(nn::Tanh<double>(), x);
  check_module(nn::Sigmoid<double>(), x);
  check_module(nn::LeakyReLU<double>(0.2), x);
  check_module(nn::Flatten<double>(), ml::randn<double>(ml::Shape{2, 2, 3}, gen));
}

TEST(Gradcheck, GRUCell) {
  ml::Generator gen(8);
  nn::GRUCell<double> cell(3, 4, gen);
  auto x = ml::randn<double>(ml::Shape{2, 3}, gen);
  auto h = ml::randn<double>(ml::Shape{2, 4}, gen);
  const auto named = cell.named_parameters();
  Inputs in{x, h};
  for (const auto& t : named.values()) in.push_back(t.detach());
  expect_grad_and_gradgrad(
      [&cell, named](const Inputs& a) {
        return cell.step(a[0], a[1], named.with_values(Inputs(a.begin() + 2, a.end())));
      },
      in);
  check_module(cell, x);
}

TEST(Gradcheck, LSTMCell) {
  ml::Generator gen(12);
  nn::LSTMCell<double> cell(3, 4, gen);
  auto x = ml::randn<double>(ml::Shape{2, 3}, gen);
  auto h = ml::randn<double>(ml::Shape{2, 4}, gen);
  auto c = ml::randn<double>(ml::Shape{2, 4}, gen);
  const auto named = cell.named_parameters();
  Inputs in{x, h, c};
  for (const auto& t : named.values()) in.push_back(t.detach());
  // Both outputs: h' + 2 c' keeps the cell state's own path in the check.
  expect_grad_and_gradgrad(
      [&cell, named](const Inputs& a) {
        const auto next =
            cell.step(a[0], {a[1], a[2]}, named.with_values(Inputs(a.begin() + 3, a.end())));
        return next.h + 2.0 * next.c;
      },
      in);
  check_module(cell, x);
}

TEST(Gradcheck, MLPAndSequential) {
  ml::Generator gen(9);
  check_module(nn::MLP<double>({3, 5, 2}, gen, nn::Activation::kTanh),
               ml::randn<double>(ml::Shape{4, 3}, gen));
}

// TaskBatched: B tasks, each with its own weights. Slice b of the output is
// forward(x[b], params[b]), and the whole map passes gradcheck/gradgradcheck with
// the task-batched weights as inputs.
TEST(Gradcheck, TaskBatchedForwardOfMLPAndSequential) {
  ml::Generator gen(11);
  nn::MLP<double> mlp({3, 5, 2}, gen, nn::Activation::kTanh);
  nn::Sequential<double> seq;
  seq.push_back(std::make_shared<nn::Linear<double>>(3, 4, gen));
  seq.push_back(std::make_shared<nn::ReLU<double>>());
  seq.push_back(std::make_shared<nn::Linear<double>>(4, 2, gen, false));
  for (const nn::Module<double>* m : {static_cast<const nn::Module<double>*>(&mlp),
                                      static_cast<const nn::Module<double>*>(&seq)}) {
    ASSERT_TRUE(nn::TaskBatched<double>(*m).fused());
    const ml::Index tasks = 3;
    const auto named = m->named_parameters();
    Inputs in{ml::randn<double>(ml::Shape{tasks, 4, 3}, gen)};
    for (const auto& t : named.values()) {
      std::vector<ml::Index> dims{tasks};
      for (ml::Index d : t.shape().dims()) dims.push_back(d);
      in.push_back(ml::randn<double>(ml::Shape(dims), gen));
    }
    auto f = [m, named](const Inputs& args) {
      return nn::TaskBatched<double>(*m).forward(
          args[0], named.with_values(Inputs(args.begin() + 1, args.end())));
    };
    const TensorD y = f(in);
    ASSERT_EQ(y.shape(), (ml::Shape{tasks, 4, 2}));
    for (ml::Index b = 0; b < tasks; ++b) {
      Inputs slice;
      for (const auto& t : Inputs(in.begin() + 1, in.end())) {
        slice.push_back(ml::squeeze(ml::narrow(t, 0, b, 1), 0));
      }
      const TensorD yb =
          m->forward(ml::squeeze(ml::narrow(in[0], 0, b, 1), 0), named.with_values(slice));
      for (ml::Index i = 0; i < yb.numel(); ++i) {
        EXPECT_NEAR(y.data()[b * yb.numel() + i], yb.data()[i], 1e-12);
      }
    }
    expect_grad_and_gradgrad(f, in);
  }
  nn::Linear<double> lin(3, 2, gen);
  EXPECT_THROW((void)nn::TaskBatched<double>(lin).forward(ml::zeros<double>(ml::Shape{2, 4, 3}),
                                                          lin.named_parameters()),
               ml::ShapeError);  // weights without the task dimension
  EXPECT_THROW((void)nn::TaskBatched<double>(lin).forward(ml::zeros<double>(ml::Shape{3}),
                                                          lin.named_parameters()),
               ml::ShapeError);  // no task dimension
}

// A module without a batched rule (ConvNet4: convolutions, batch norm, pooling) runs
// task by task under TaskBatched: each slice equals its own forward pass, with batch
// statistics per task, and gradients flow to every task's weights.
TEST(Gradcheck, TaskBatchedFallsBackTaskByTask) {
  ml::Generator gen(12);
  nn::ConvNet4<double> convnet(nn::ConvNet4Options{.hidden = 2, .image_size = 16, .ways = 2}, gen);
  const nn::TaskBatched<double> batched(convnet);
  EXPECT_FALSE(batched.fused());
  const ml::Index tasks = 2;
  const auto named = convnet.named_parameters();
  Inputs stacked;
  for (const auto& t : named.values()) {
    std::vector<ml::Index> dims{tasks};
    for (ml::Index d : t.shape().dims()) dims.push_back(d);
    stacked.push_back(ml::randn<double>(ml::Shape(dims), gen).requires_grad(true));
  }
  const TensorD x = ml::randn<double>(ml::Shape{tasks, 3, 1, 16, 16}, gen);
  const TensorD y = batched.forward(x, named.with_values(stacked));
  ASSERT_EQ(y.shape(), (ml::Shape{tasks, 3, 2}));
  for (ml::Index b = 0; b < tasks; ++b) {
    Inputs slice;
    for (const auto& t : stacked) slice.push_back(ml::select(t, 0, b).detach());
    const TensorD yb = convnet.forward(ml::select(x, 0, b), named.with_values(slice));
    for (ml::Index i = 0; i < yb.numel(); ++i) {
      EXPECT_EQ(y.data()[b * yb.numel() + i], yb.data()[i]);
    }
  }
  // Every task's weights get a gradient (a convolution's bias under batch norm gets
  // zero, as it should: the normalisation removes it).
  const auto grads = ml::autograd::grad({ml::sum(ml::square(y))}, stacked);
  for (ml::Index b = 0; b < tasks; ++b) {
    double total = 0.0;
    for (const auto& g : grads) {
      ASSERT_TRUE(g.defined());
      total += ml::sum(ml::abs(ml::select(g, 0, b))).item();
    }
    EXPECT_GT(total, 0.0) << "task " << b;
  }
}

TEST(Gradcheck, ConvNet4Small) {
  ml::Generator gen(10);
  nn::ConvNet4<double> net(nn::ConvNet4Options{.hidden = 2, .image_size = 16, .ways = 2}, gen);
  check_module(net, ml::randn<double>(ml::Shape{2, 1, 16, 16}, gen));
}
