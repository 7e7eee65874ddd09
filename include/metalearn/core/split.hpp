#pragma once
/// @file
/// Split: which stream of tasks or environments a sampler draws from.
// SPDX-License-Identifier: MIT

#include <cstdint>

namespace metalearn {

/// Which stream a task sampler or an environment family draws from. Part of the seed
/// of every task and environment (derive_seed({seed, split, index})), so the
/// training, validation and test streams of one run never share one, and a task and
/// an environment of the same (seed, split, index) come from the same seed.
enum class Split : std::uint64_t { kTrain = 0, kValidation = 1, kTest = 2 };

}  // namespace metalearn
