#pragma once
/// @file
/// Umbrella of the optional distributed layer (target metalearn::distributed, built
/// with METALEARN_WITH_MPI): data-parallel meta-training over MPI. Not included by
/// metalearn.hpp, so that a program without MPI never sees <mpi.h>.

#include "metalearn/distributed/communicator.hpp"     // IWYU pragma: export
#include "metalearn/distributed/sharded_batches.hpp"  // IWYU pragma: export
#include "metalearn/distributed/trainer.hpp"          // IWYU pragma: export
