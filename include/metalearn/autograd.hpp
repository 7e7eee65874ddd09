#pragma once
/// @file
/// Umbrella of the autograd layer.

#include "metalearn/autograd/functional.hpp"  // IWYU pragma: export
#include "metalearn/autograd/grad.hpp"        // IWYU pragma: export
#include "metalearn/autograd/grad_mode.hpp"   // IWYU pragma: export
#include "metalearn/autograd/gradcheck.hpp"   // IWYU pragma: export
#include "metalearn/autograd/node.hpp"        // IWYU pragma: export
