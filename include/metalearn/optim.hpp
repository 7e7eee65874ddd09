#pragma once
/// @file
/// Umbrella of the optim layer: optimizers with savable state, learning-rate
/// schedules and differentiable functional updates.

#include "metalearn/optim/adam.hpp"        // IWYU pragma: export
#include "metalearn/optim/functional.hpp"  // IWYU pragma: export
#include "metalearn/optim/optimizer.hpp"   // IWYU pragma: export
#include "metalearn/optim/schedule.hpp"    // IWYU pragma: export
#include "metalearn/optim/sgd.hpp"         // IWYU pragma: export
