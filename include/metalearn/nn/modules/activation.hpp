#pragma once
/// @file
/// Parameter-free layers: ReLU, Tanh, Sigmoid, LeakyReLU, Flatten, and the
/// Activation enum used by MLP.
// SPDX-License-Identifier: MIT

#include <memory>
#include <sstream>
#include <string>

#include "metalearn/core/export.hpp"
#include "metalearn/nn/functional.hpp"
#include "metalearn/nn/module.hpp"

namespace metalearn::nn {

template <class T = float>
class METALEARN_API ReLU : public Cloneable<ReLU<T>, T> {
 public:
  using Module<T>::forward;
  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>&) const override {
    return functional::relu(x);
  }
  [[nodiscard]] std::string type_name() const override { return "ReLU"; }
};

template <class T = float>
class METALEARN_API Tanh : public Cloneable<Tanh<T>, T> {
 public:
  using Module<T>::forward;
  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>&) const override {
    return functional::tanh(x);
  }
  [[nodiscard]] std::string type_name() const override { return "Tanh"; }
};

template <class T = float>
class METALEARN_API Sigmoid : public Cloneable<Sigmoid<T>, T> {
 public:
  using Module<T>::forward;
  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>&) const override {
    return functional::sigmoid(x);
  }
  [[nodiscard]] std::string type_name() const override { return "Sigmoid"; }
};

template <class T = float>
class METALEARN_API LeakyReLU : public Cloneable<LeakyReLU<T>, T> {
 public:
  using Module<T>::forward;
  explicit LeakyReLU(double negative_slope = 0.01) : slope_(negative_slope) {}
  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>&) const override {
    return functional::leaky_relu(x, static_cast<T>(slope_));
  }
  [[nodiscard]] std::string type_name() const override { return "LeakyReLU"; }
  [[nodiscard]] std::string extra_repr() const override {
    std::ostringstream os;
    os << "negative_slope=" << slope_;
    return os.str();
  }

 private:
  double slope_;
};

/// Collapses dimensions [start, end] into one (default: all but the batch dimension).
template <class T = float>
class METALEARN_API Flatten : public Cloneable<Flatten<T>, T> {
 public:
  using Module<T>::forward;
  explicit Flatten(Index start = 1, Index end = -1) : start_(start), end_(end) {}
  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>&) const override {
    return functional::flatten(x, start_, end_);
  }
  [[nodiscard]] std::string type_name() const override { return "Flatten"; }
  [[nodiscard]] std::string extra_repr() const override {
    return "start=" + std::to_string(start_) + ", end=" + std::to_string(end_);
  }

 private:
  Index start_, end_;
};

/// Activation choice for MLP and friends.
enum class Activation { kNone, kReLU, kTanh, kSigmoid, kLeakyReLU };

/// A new activation module (nullptr for kNone).
template <class T>
std::shared_ptr<Module<T>> make_activation(Activation a) {
  switch (a) {
    case Activation::kNone:
      return nullptr;
    case Activation::kReLU:
      return std::make_shared<ReLU<T>>();
    case Activation::kTanh:
      return std::make_shared<Tanh<T>>();
    case Activation::kSigmoid:
      return std::make_shared<Sigmoid<T>>();
    case Activation::kLeakyReLU:
      return std::make_shared<LeakyReLU<T>>();
  }
  return nullptr;
}

extern template class ReLU<float>;
extern template class ReLU<double>;
extern template class Tanh<float>;
extern template class Tanh<double>;
extern template class Sigmoid<float>;
extern template class Sigmoid<double>;
extern template class LeakyReLU<float>;
extern template class LeakyReLU<double>;
extern template class Flatten<float>;
extern template class Flatten<double>;

}  // namespace metalearn::nn
