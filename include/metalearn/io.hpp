#pragma once
/// @file
/// Umbrella of the io layer: checkpoints and metrics logs.

#include "metalearn/io/checkpoint.hpp"   // IWYU pragma: export
#include "metalearn/io/metrics_log.hpp"  // IWYU pragma: export
#include "metalearn/io/safetensors.hpp"  // IWYU pragma: export
