// Explicit instantiations of the nn layers for float and double.
// SPDX-License-Identifier: MIT

#include "metalearn/nn.hpp"

namespace metalearn::nn {

#define METALEARN_INSTANTIATE_LAYERS(T) \
  template class Linear<T>;             \
  template class Conv2d<T>;             \
  template class MaxPool2d<T>;          \
  template class ReLU<T>;               \
  template class Tanh<T>;               \
  template class Sigmoid<T>;            \
  template class LeakyReLU<T>;          \
  template class Flatten<T>;            \
  template class BatchNorm1d<T>;        \
  template class BatchNorm2d<T>;        \
  template class Sequential<T>;         \
  template class MLP<T>;                \
  template class GRUCell<T>;            \
  template class LSTMCell<T>;           \
  template class ConvNet4<T>;

METALEARN_INSTANTIATE_LAYERS(float)
METALEARN_INSTANTIATE_LAYERS(double)

#undef METALEARN_INSTANTIATE_LAYERS

}  // namespace metalearn::nn
