#pragma once
/// @file
/// Umbrella of the algorithms layer.

#include "metalearn/algorithms/common.hpp"                    // IWYU pragma: export
#include "metalearn/algorithms/maml/maml.hpp"                 // IWYU pragma: export
#include "metalearn/algorithms/matching/attention.hpp"        // IWYU pragma: export
#include "metalearn/algorithms/matching/full_context.hpp"     // IWYU pragma: export
#include "metalearn/algorithms/matching/matching_net.hpp"     // IWYU pragma: export
#include "metalearn/algorithms/meta_learner.hpp"              // IWYU pragma: export
#include "metalearn/algorithms/neural_process/baselines.hpp"  // IWYU pragma: export
#include "metalearn/algorithms/neural_process/cnp.hpp"        // IWYU pragma: export
#include "metalearn/algorithms/neural_process/np.hpp"         // IWYU pragma: export
#include "metalearn/algorithms/protonet/protonet.hpp"         // IWYU pragma: export
#include "metalearn/algorithms/reptile/reptile.hpp"           // IWYU pragma: export
#include "metalearn/algorithms/rl2/rl2.hpp"                   // IWYU pragma: export
