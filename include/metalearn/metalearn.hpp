#pragma once
// metalearn: meta-learning in C++. Includes every layer.

#include "metalearn/autograd.hpp"  // IWYU pragma: export
#include "metalearn/tensor.hpp"    // IWYU pragma: export
#include "metalearn/version.hpp"   // IWYU pragma: export
