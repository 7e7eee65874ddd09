#pragma once
/// @file
/// What the models of the Neural Process family share: the Gaussian prediction they
/// return, parameters of several networks under one dict with prefixes, and the
/// Gaussian log-density.
// SPDX-License-Identifier: MIT

#include <cmath>
#include <numbers>
#include <string>

#include "metalearn/core/random.hpp"
#include "metalearn/nn/init.hpp"
#include "metalearn/nn/modules/mlp.hpp"
#include "metalearn/nn/param_dict.hpp"
#include "metalearn/tensor/ops.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::algorithms {

/// A Gaussian predictive distribution per target point: mean and standard deviation,
/// both [M, y_dim].
template <class T>
struct GaussianPrediction {
  Tensor<T> mean;
  Tensor<T> stddev;
};
namespace detail {
/// The prefixed view of a module's parameters ("encoder." + name).
template <class T>
void insert_prefixed(nn::ParamDict<T>& out, const std::string& prefix,
                     const nn::ParamDict<T>& params) {
  for (const auto& [name, t] : params) out.insert(prefix + std::string(name), t);
}
/// The entries of `params` under `prefix`, with the prefix removed.
template <class T>
nn::ParamDict<T> unprefixed(const nn::ParamDict<T>& params, const std::string& prefix) {
  nn::ParamDict<T> out;
  for (const auto& [name, t] : params) {
    const std::string n(name);
    if (n.compare(0, prefix.size(), prefix) == 0) out.insert(n.substr(prefix.size()), t);
  }
  return out;
}
}  // namespace detail

namespace detail {
/// Glorot-uniform weights and zero biases, as the reference implementation initialises
/// its layers.
template <class T>
void glorot_init(const nn::MLP<T>& mlp, Generator& gen) {
  for (const auto& [name, t] : mlp.named_parameters()) {
    const std::string n(name);
    if (n.size() >= 6 && n.compare(n.size() - 6, 6, "weight") == 0) {
      nn::init::xavier_uniform(t, gen);
    } else {
      nn::init::zeros(t);
    }
  }
}

/// The Gaussian a decoder's output [M, 2 y_dim] stands for: the first y_dim columns the
/// mean, the others through sigma = floor + (1 - floor) softplus(.).
template <class T>
GaussianPrediction<T> gaussian_head(const Tensor<T>& out, Index y_dim, double floor) {
  const T f = static_cast<T>(floor);
  GaussianPrediction<T> p;
  p.mean = slice(out, 1, 0, y_dim);
  p.stddev = add_scalar(mul_scalar(softplus(slice(out, 1, y_dim, 2 * y_dim)), T(1) - f), f);
  return p;
}

/// log N(y; mu, sigma^2) elementwise: -log sigma - (y - mu)^2 / (2 sigma^2) - log(2 pi) / 2.
template <class T>
Tensor<T> gaussian_log_density(const Tensor<T>& y, const Tensor<T>& mu, const Tensor<T>& sigma) {
  const Tensor<T> z = div(sub(y, mu), sigma);
  return add_scalar(sub(mul_scalar(square(z), T(-0.5)), log(sigma)),
                    static_cast<T>(-0.5 * std::log(2.0 * std::numbers::pi)));
}
}  // namespace detail

}  // namespace metalearn::algorithms
