#pragma once
/// @file
/// Umbrella of the env layer: the environment interface and batches, the bandit and
/// tabular MDP families, their baseline agents and the evaluator.

#include "metalearn/env/agent.hpp"          // IWYU pragma: export
#include "metalearn/env/bandit.hpp"         // IWYU pragma: export
#include "metalearn/env/bandit_agents.hpp"  // IWYU pragma: export
#include "metalearn/env/distributions.hpp"  // IWYU pragma: export
#include "metalearn/env/environment.hpp"    // IWYU pragma: export
#include "metalearn/env/evaluate.hpp"       // IWYU pragma: export
#include "metalearn/env/mdp_agents.hpp"     // IWYU pragma: export
#include "metalearn/env/planning.hpp"       // IWYU pragma: export
#include "metalearn/env/tabular_mdp.hpp"    // IWYU pragma: export
