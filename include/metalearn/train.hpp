#pragma once
/// @file
/// Umbrella of the train layer: what runs any meta-learner (fit, checkpoints, saved classifiers).

#include "metalearn/train/checkpoint.hpp"  // IWYU pragma: export
#include "metalearn/train/classifier.hpp"  // IWYU pragma: export
#include "metalearn/train/fit.hpp"         // IWYU pragma: export
