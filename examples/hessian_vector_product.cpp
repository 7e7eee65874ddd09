// Second order in a few lines: gradient, Hessian-vector product and full Hessian
// of f(w) = sum(w^3) + (w0 * w1)^2, checked against the closed forms.
#include <fmt/format.h>

#include <metalearn/metalearn.hpp>

namespace ml = metalearn;

int main() {
  ml::Generator gen(42);
  auto w = ml::randn<double>({3}, gen).requires_grad(true);
  auto f = [](const ml::Tensor<double>& x) {
    auto x01 = ml::slice(x, 0, 0, 1) * ml::slice(x, 0, 1, 2);
    return ml::sum(x * x * x) + ml::sum(x01 * x01);
  };
  auto loss = f(w);
  auto g = ml::autograd::grad({loss}, {w}, {.create_graph = true})[0];
  auto v = ml::from_vector<double>({1.0, 0.0, -1.0});
  auto hv = ml::autograd::grad({ml::sum(g * v)}, {w})[0];
  auto hessian = ml::autograd::hessian<double>(f, w);

  const double* x = w.data();
  fmt::print("w         = [{: .6f} {: .6f} {: .6f}]\n", x[0], x[1], x[2]);
  fmt::print("grad f(w) = [{: .6f} {: .6f} {: .6f}]\n", g.data()[0], g.data()[1], g.data()[2]);
  fmt::print("H v       = [{: .6f} {: .6f} {: .6f}]   (v = [1 0 -1])\n", hv.data()[0], hv.data()[1],
             hv.data()[2]);
  // Closed form: H = diag(6 w) + [[2 w1^2, 4 w0 w1, 0], [4 w0 w1, 2 w0^2, 0], [0, 0, 0]].
  const double expect[3] = {6 * x[0] + 2 * x[1] * x[1], 4 * x[0] * x[1], -6 * x[2]};
  double err = 0;
  for (int i = 0; i < 3; ++i) err = std::max(err, std::abs(expect[i] - hv.data()[i]));
  fmt::print("Hessian   =\n");
  for (int r = 0; r < 3; ++r) {
    fmt::print("  [{: .6f} {: .6f} {: .6f}]\n", hessian.at(r, 0), hessian.at(r, 1),
               hessian.at(r, 2));
  }
  fmt::print("max |H v - closed form| = {:.3g}\n", err);
  return err < 1e-9 ? 0 : 1;
}
