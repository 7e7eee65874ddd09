#pragma once
/// @file
/// gradcheck / gradgradcheck: compare the analytic Jacobian of a function (and of its
/// backward pass) with central finite differences. Use double precision.

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "metalearn/autograd/grad.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/tensor/factory.hpp"
#include "metalearn/tensor/ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::autograd {

struct GradcheckOptions {
  double eps = 1e-6;   ///< finite-difference step
  double atol = 1e-5;  ///< absolute tolerance
  double rtol = 1e-3;  ///< relative tolerance (of the numerical value)
  std::uint64_t seed = 0;  ///< for the random grad_outputs of gradgradcheck
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  std::string message;  ///< the first mismatches, when !ok
  explicit operator bool() const { return ok; }
};

using DifferentiableFunction =
    std::function<Tensor<double>(const std::vector<Tensor<double>>&)>;

/// Checks every entry of the Jacobian of f (all output elements by all input
/// elements) against central differences.
inline GradcheckResult gradcheck(const DifferentiableFunction& f,
                                 const std::vector<Tensor<double>>& inputs,
                                 const GradcheckOptions& options = {}) {
  std::vector<Tensor<double>> xs;
  xs.reserve(inputs.size());
  for (const auto& x : inputs) xs.push_back(x.detach().clone().requires_grad(true));
  Tensor<double> y = f(xs);
  METALEARN_CHECK(y.requires_grad(), AutogradError,
                  "gradcheck: the function's output does not depend on its inputs");
  const Index m = y.numel();

  // Analytic Jacobian, one backward pass per output element.
  std::vector<std::vector<double>> analytic(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    analytic[i].assign(static_cast<std::size_t>(m * xs[i].numel()), 0.0);
  }
  for (Index r = 0; r < m; ++r) {
    Tensor<double> e = zeros<double>(y.shape());
    e.data()[r] = 1.0;
    auto g = grad({y}, xs, GradOptions{.retain_graph = true, .allow_unused = true}, {e});
    for (std::size_t i = 0; i < xs.size(); ++i) {
      if (!g[i].defined()) continue;
      for (Index c = 0; c < xs[i].numel(); ++c) {
        analytic[i][static_cast<std::size_t>(r * xs[i].numel() + c)] = g[i].data()[c];
      }
    }
  }

  // Numerical Jacobian.
  GradcheckResult result;
  std::ostringstream msg;
  int reported = 0;
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    double* p = xs[i].data();
    for (Index c = 0; c < xs[i].numel(); ++c) {
      const double saved = p[c];
      // Copies: f may return a view of its input (reshape), whose values would
      // change with the next perturbation.
      p[c] = saved + options.eps;
      Tensor<double> yp = f(xs).clone();
      p[c] = saved - options.eps;
      Tensor<double> ym = f(xs).clone();
      p[c] = saved;
      for (Index r = 0; r < m; ++r) {
        const double num = (yp.data()[r] - ym.data()[r]) / (2.0 * options.eps);
        const double ana = analytic[i][static_cast<std::size_t>(r * xs[i].numel() + c)];
        const double err = std::abs(num - ana);
        result.max_abs_error = std::max(result.max_abs_error, err);
        if (!(err <= options.atol + options.rtol * std::abs(num))) {
          result.ok = false;
          if (reported++ < 8) {
            msg << "input " << i << " element " << c << ", output element " << r
                << ": analytic " << ana << " vs numerical " << num << "\n";
          }
        }
      }
    }
  }
  if (!result.ok) result.message = "gradcheck: Jacobian mismatch\n" + msg.str();
  return result;
}

/// Checks second derivatives: the gradient of f contracted with random
/// grad_outputs u, as a function of (inputs, u), is itself gradchecked.
inline GradcheckResult gradgradcheck(const DifferentiableFunction& f,
                                     const std::vector<Tensor<double>>& inputs,
                                     const GradcheckOptions& options = {}) {
  Tensor<double> y0;
  {
    NoGradGuard no_grad;
    y0 = f(inputs);
  }
  Generator gen(options.seed);
  Tensor<double> u = randn<double>(y0.shape(), gen);
  const std::size_t n = inputs.size();
  DifferentiableFunction backward_fn = [&f, n](const std::vector<Tensor<double>>& args) {
    std::vector<Tensor<double>> xs(args.begin(), args.begin() + static_cast<std::ptrdiff_t>(n));
    Tensor<double> y = f(xs);
    if (!is_grad_enabled()) {
      // Numerical pass: evaluate the analytic gradient with a fresh graph.
      EnableGradGuard enable;
      std::vector<Tensor<double>> ys;
      for (const auto& x : xs) ys.push_back(x.detach().requires_grad(true));
      Tensor<double> yy = f(ys);
      auto g = grad({yy}, ys, GradOptions{.allow_unused = true}, {args[n].detach()});
      std::vector<Tensor<double>> flat;
      for (std::size_t i = 0; i < n; ++i) {
        flat.push_back(g[i].defined() ? reshape(g[i], std::vector<Index>{-1})
                                      : zeros<double>(Shape{xs[i].numel()}));
      }
      return concat(flat, 0).detach();
    }
    auto g = grad({y}, xs, GradOptions{.create_graph = true, .allow_unused = true}, {args[n]});
    std::vector<Tensor<double>> flat;
    for (std::size_t i = 0; i < n; ++i) {
      flat.push_back(g[i].defined() ? reshape(g[i], std::vector<Index>{-1})
                                    : zeros<double>(Shape{xs[i].numel()}));
    }
    return concat(flat, 0);
  };
  std::vector<Tensor<double>> args(inputs.begin(), inputs.end());
  args.push_back(u);
  GradcheckResult r = gradcheck(backward_fn, args, options);
  if (!r.ok) r.message = "gradgradcheck: second-order mismatch\n" + r.message;
  return r;
}

}  // namespace metalearn::autograd
