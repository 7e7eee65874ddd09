#pragma once
/// @file
/// Umbrella of the data layer: tasks, samplers, task families and datasets.

#include "metalearn/data/class_dataset.hpp"       // IWYU pragma: export
#include "metalearn/data/episodic_sampler.hpp"    // IWYU pragma: export
#include "metalearn/data/gaussian_process.hpp"    // IWYU pragma: export
#include "metalearn/data/image_completion.hpp"    // IWYU pragma: export
#include "metalearn/data/meta_batch_sampler.hpp"  // IWYU pragma: export
#include "metalearn/data/omniglot.hpp"            // IWYU pragma: export
#include "metalearn/data/png.hpp"                 // IWYU pragma: export
#include "metalearn/data/procedural_glyphs.hpp"   // IWYU pragma: export
#include "metalearn/data/sinusoid.hpp"            // IWYU pragma: export
#include "metalearn/data/task.hpp"                // IWYU pragma: export
#include "metalearn/data/task_sampler.hpp"        // IWYU pragma: export
