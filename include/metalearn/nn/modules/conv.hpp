#pragma once
/// @file
/// Conv2d and MaxPool2d over NCHW images.
// SPDX-License-Identifier: MIT

#include <cmath>
#include <string>

#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/nn/functional.hpp"
#include "metalearn/nn/init.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/tensor/factory.hpp"

namespace metalearn::nn {

/// A 2-D convolution with square kernels: `weight` [out, in, k, k], `bias` [out].
///
/// Initialised like torch.nn.Conv2d: kaiming_uniform(a = sqrt(5)) weight and
/// U(+-1/sqrt(fan_in)) bias, fan_in = in * k * k.
template <class T = float>
class METALEARN_API Conv2d : public Cloneable<Conv2d<T>, T> {
 public:
  using Module<T>::forward;

  Conv2d(Index in_channels, Index out_channels, Index kernel, Generator& gen, Index stride = 1,
         Index padding = 0, bool bias = true)
      : in_(in_channels),
        out_(out_channels),
        kernel_(kernel),
        stride_(stride),
        padding_(padding),
        bias_(bias) {
    METALEARN_CHECK(in_channels > 0 && out_channels > 0 && kernel > 0, ValueError,
                    "Conv2d: channels ", in_channels, " -> ", out_channels, " and kernel ", kernel,
                    " must be positive");
    METALEARN_CHECK(stride >= 1 && padding >= 0, ValueError, "Conv2d: stride ", stride,
                    " must be >= 1 and padding ", padding, " >= 0");
    auto w = zeros<T>(Shape{out_channels, in_channels, kernel, kernel});
    init::kaiming_uniform(w, gen, std::sqrt(5.0));
    this->register_parameter("weight", w);
    if (bias) {
      auto b = zeros<T>(Shape{out_channels});
      const double bound = 1.0 / std::sqrt(static_cast<double>(in_channels * kernel * kernel));
      init::uniform(b, gen, -bound, bound);
      this->register_parameter("bias", b);
    }
  }

  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>& params) const override {
    return functional::conv2d(x, this->param(params, 0),
                              bias_ ? this->param(params, 1) : Tensor<T>(), stride_, padding_);
  }

  [[nodiscard]] std::string type_name() const override { return "Conv2d"; }
  [[nodiscard]] std::string extra_repr() const override {
    return std::to_string(in_) + ", " + std::to_string(out_) +
           ", kernel=" + std::to_string(kernel_) + ", stride=" + std::to_string(stride_) +
           ", padding=" + std::to_string(padding_) + ", bias=" + (bias_ ? "true" : "false");
  }

  [[nodiscard]] Index in_channels() const noexcept { return in_; }
  [[nodiscard]] Index out_channels() const noexcept { return out_; }
  [[nodiscard]] Index kernel_size() const noexcept { return kernel_; }
  [[nodiscard]] Index stride() const noexcept { return stride_; }
  [[nodiscard]] Index padding() const noexcept { return padding_; }

 private:
  Index in_, out_, kernel_, stride_, padding_;
  bool bias_;
};

/// Max pooling with a square window; the stride defaults to the window size.
template <class T = float>
class METALEARN_API MaxPool2d : public Cloneable<MaxPool2d<T>, T> {
 public:
  using Module<T>::forward;

  explicit MaxPool2d(Index kernel, Index stride = 0)
      : kernel_(kernel), stride_(stride == 0 ? kernel : stride) {
    METALEARN_CHECK(kernel >= 1 && stride >= 0, ValueError, "MaxPool2d: kernel ", kernel,
                    " must be >= 1 and stride ", stride, " >= 0");
  }

  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>&) const override {
    return functional::max_pool2d(x, kernel_, stride_);
  }
  [[nodiscard]] std::string type_name() const override { return "MaxPool2d"; }
  [[nodiscard]] std::string extra_repr() const override {
    return "kernel=" + std::to_string(kernel_) + ", stride=" + std::to_string(stride_);
  }

 private:
  Index kernel_, stride_;
};

extern template class Conv2d<float>;
extern template class Conv2d<double>;
extern template class MaxPool2d<float>;
extern template class MaxPool2d<double>;

}  // namespace metalearn::nn
