#pragma once
/// @file
/// All differentiable tensor ops.

#include "metalearn/tensor/ops/batch_norm.hpp"   // IWYU pragma: export
#include "metalearn/tensor/ops/conv.hpp"         // IWYU pragma: export
#include "metalearn/tensor/ops/distance.hpp"     // IWYU pragma: export
#include "metalearn/tensor/ops/elementwise.hpp"  // IWYU pragma: export
#include "metalearn/tensor/ops/linalg.hpp"       // IWYU pragma: export
#include "metalearn/tensor/ops/loss.hpp"         // IWYU pragma: export
#include "metalearn/tensor/ops/pool.hpp"         // IWYU pragma: export
#include "metalearn/tensor/ops/recurrent.hpp"    // IWYU pragma: export
#include "metalearn/tensor/ops/reduction.hpp"    // IWYU pragma: export
#include "metalearn/tensor/ops/shape_ops.hpp"    // IWYU pragma: export
