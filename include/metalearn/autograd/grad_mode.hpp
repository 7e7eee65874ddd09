#pragma once
/// @file
/// Grad mode and anomaly mode (thread_local, with RAII guards). Declared in the
/// tensor layer, which consults them in every op; this is their autograd home.

#include "metalearn/tensor/grad_mode.hpp"  // IWYU pragma: export
