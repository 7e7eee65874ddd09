#pragma once
/// @file
/// metalearn: meta-learning in C++. Includes every layer.

#include "metalearn/algorithms.hpp"  // IWYU pragma: export
#include "metalearn/autograd.hpp"    // IWYU pragma: export
#include "metalearn/data.hpp"        // IWYU pragma: export
#include "metalearn/env.hpp"         // IWYU pragma: export
#include "metalearn/io.hpp"          // IWYU pragma: export
#include "metalearn/nn.hpp"          // IWYU pragma: export
#include "metalearn/optim.hpp"       // IWYU pragma: export
#include "metalearn/tensor.hpp"      // IWYU pragma: export
#include "metalearn/train.hpp"       // IWYU pragma: export
#include "metalearn/version.hpp"     // IWYU pragma: export
