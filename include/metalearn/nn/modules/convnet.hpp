#pragma once
/// @file
/// ConvNet4: the standard 4-block convolutional backbone of few-shot learning.
// SPDX-License-Identifier: MIT

#include <memory>
#include <string>

#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/nn/modules/activation.hpp"
#include "metalearn/nn/modules/batch_norm.hpp"
#include "metalearn/nn/modules/conv.hpp"
#include "metalearn/nn/modules/linear.hpp"
#include "metalearn/nn/modules/sequential.hpp"

namespace metalearn::nn {

/// Options of ConvNet4:
/// `ConvNet4Options{.hidden = 32, .ways = 5, .batch_norm = {.mode = BatchNormMode::kRunning}}`.
struct ConvNet4Options {
  /// Channels of the input images (1 for Omniglot, 3 for miniImageNet).
  Index in_channels = 1;
  /// Channels of every block (64 in the literature).
  Index hidden = 64;
  /// Height and width of the (square) input images.
  Index image_size = 28;
  /// Classes of the linear head; 0 for no head (the output is the embedding).
  Index ways = 0;
  /// Batch norm of every block.
  BatchNormOptions batch_norm{};
};

/// Four blocks of [conv 3x3 (padding 1) -> batch norm -> ReLU -> 2x2 max-pool],
/// flattened, with an optional linear head. (Sequential runs each ReLU after the
/// pool that follows it: the same values and gradients on a quarter of the values.)
///
/// Parameters: `features.{0,4,8,12}.{weight,bias}` (convolutions),
/// `features.{1,5,9,13}.{weight,bias}` (batch norms) and `head.{weight,bias}`.
/// For 28x28 inputs with hidden = 64 the embedding has 64 dimensions (28 -> 14 ->
/// 7 -> 3 -> 1); for 84x84 it has 64 * 5 * 5 = 1600.
///
/// @code
/// nn::ConvNet4 net(nn::ConvNet4Options{.ways = 5}, gen);  // 5-way classifier
/// auto logits = net.forward(images);                       // [N, 5]
/// @endcode
template <class T = float>
class METALEARN_API ConvNet4 : public Cloneable<ConvNet4<T>, T> {
 public:
  using Module<T>::forward;

  explicit ConvNet4(Generator& gen) : ConvNet4(ConvNet4Options{}, gen) {}

  ConvNet4(const ConvNet4Options& options, Generator& gen) : options_(options) {
    METALEARN_CHECK(options.in_channels > 0 && options.hidden > 0 && options.ways >= 0, ValueError,
                    "ConvNet4: in_channels ", options.in_channels, ", hidden ", options.hidden,
                    " must be positive and ways ", options.ways, " non-negative");
    Index s = options.image_size;
    for (int b = 0; b < 4; ++b) s /= 2;
    METALEARN_CHECK(s >= 1, ValueError, "ConvNet4: images of size ", options.image_size,
                    " are too small for four 2x2 poolings (need at least 16)");
    spatial_ = s;
    auto features = std::make_shared<Sequential<T>>();
    Index in = options.in_channels;
    for (int b = 0; b < 4; ++b) {
      features->push_back(std::make_shared<Conv2d<T>>(in, options.hidden, 3, gen, 1, 1));
      features->push_back(std::make_shared<BatchNorm2d<T>>(options.hidden, options.batch_norm));
      features->push_back(std::make_shared<ReLU<T>>());
      features->push_back(std::make_shared<MaxPool2d<T>>(2));
      in = options.hidden;
    }
    this->register_module("features", std::move(features));
    if (options.ways > 0) {
      this->register_module("head", std::make_shared<Linear<T>>(feature_dim(), options.ways, gen));
    }
  }

  /// Logits [N, ways] with a head, else the embedding [N, feature_dim()].
  Tensor<T> forward(const Tensor<T>& x, const ParamDict<T>& params) const override {
    Tensor<T> h = embed(x, params);
    return options_.ways > 0 ? this->forward_child(1, h, params) : h;
  }

  /// The embedding [N, feature_dim()] before the head.
  Tensor<T> embed(const Tensor<T>& x, const ParamDict<T>& params) const {
    METALEARN_CHECK(x.dim() == 4 && x.shape()[1] == options_.in_channels, ShapeError,
                    "ConvNet4::forward: expected images [N, ", options_.in_channels,
                    ", H, W], got ", x.shape());
    return functional::flatten(this->forward_child(0, x, params), 1);
  }
  Tensor<T> embed(const Tensor<T>& x) const { return embed(x, this->named_parameters()); }

  /// Size of the embedding: hidden * s * s with s = image_size / 16 (rounded down).
  [[nodiscard]] Index feature_dim() const noexcept { return options_.hidden * spatial_ * spatial_; }
  [[nodiscard]] const ConvNet4Options& options() const noexcept { return options_; }
  [[nodiscard]] std::string type_name() const override { return "ConvNet4"; }
  [[nodiscard]] std::string extra_repr() const override {
    return "in_channels=" + std::to_string(options_.in_channels) +
           ", hidden=" + std::to_string(options_.hidden) +
           ", image_size=" + std::to_string(options_.image_size) +
           ", ways=" + std::to_string(options_.ways);
  }

 private:
  ConvNet4Options options_;
  Index spatial_ = 1;
};

extern template class ConvNet4<float>;
extern template class ConvNet4<double>;

}  // namespace metalearn::nn
