#pragma once
/// @file
/// Graph nodes (Node, LeafNode, FunctionNode). Declared in the tensor layer, where
/// ops record them; this is their autograd home.

#include "metalearn/tensor/node.hpp"  // IWYU pragma: export
