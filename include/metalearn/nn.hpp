#pragma once
/// @file
/// Umbrella of the nn layer: modules, ParamDict, layers, functional ops, initialisers.

#include "metalearn/nn/forward_context.hpp"         // IWYU pragma: export
#include "metalearn/nn/functional.hpp"              // IWYU pragma: export
#include "metalearn/nn/init.hpp"                    // IWYU pragma: export
#include "metalearn/nn/module.hpp"                  // IWYU pragma: export
#include "metalearn/nn/modules/activation.hpp"      // IWYU pragma: export
#include "metalearn/nn/modules/attention.hpp"       // IWYU pragma: export
#include "metalearn/nn/modules/batch_norm.hpp"      // IWYU pragma: export
#include "metalearn/nn/modules/conv.hpp"            // IWYU pragma: export
#include "metalearn/nn/modules/convnet.hpp"         // IWYU pragma: export
#include "metalearn/nn/modules/gru_cell.hpp"        // IWYU pragma: export
#include "metalearn/nn/modules/linear.hpp"          // IWYU pragma: export
#include "metalearn/nn/modules/lstm_cell.hpp"       // IWYU pragma: export
#include "metalearn/nn/modules/mlp.hpp"             // IWYU pragma: export
#include "metalearn/nn/modules/recurrent_cell.hpp"  // IWYU pragma: export
#include "metalearn/nn/modules/sequential.hpp"      // IWYU pragma: export
#include "metalearn/nn/param_dict.hpp"              // IWYU pragma: export
#include "metalearn/nn/task_batched.hpp"            // IWYU pragma: export
