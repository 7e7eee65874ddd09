#pragma once
/// @file
/// Umbrella of the tensor layer: Tensor<T>, factories and differentiable ops.

#include "metalearn/autograd/node.hpp"   // IWYU pragma: export
#include "metalearn/core/error.hpp"      // IWYU pragma: export
#include "metalearn/core/random.hpp"     // IWYU pragma: export
#include "metalearn/core/shape.hpp"      // IWYU pragma: export
#include "metalearn/core/simd.hpp"       // IWYU pragma: export
#include "metalearn/tensor/factory.hpp"  // IWYU pragma: export
#include "metalearn/tensor/gemm.hpp"     // IWYU pragma: export
#include "metalearn/tensor/ops.hpp"      // IWYU pragma: export
#include "metalearn/tensor/tensor.hpp"   // IWYU pragma: export
