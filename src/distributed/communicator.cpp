// The MPI calls of metalearn::distributed.
// SPDX-License-Identifier: MIT
#include "metalearn/distributed/communicator.hpp"

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "metalearn/core/error.hpp"

namespace metalearn::distributed {

namespace {

// Throws Error naming `function` and MPI's text for `code` when it is not MPI_SUCCESS.
void check_mpi(int code, const char* function, const char* call) {
  if (code == MPI_SUCCESS) [[likely]] {
    return;
  }
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  metalearn::detail::throw_error<Error>(
      function, ": ", call, " failed: ", std::string(text, static_cast<std::size_t>(length)));
}

bool mpi_initialized() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  int finalized = 0;
  MPI_Finalized(&finalized);
  return initialized != 0 && finalized == 0;
}

int as_count(std::size_t n, const char* function) {
  METALEARN_CHECK(n <= static_cast<std::size_t>(INT_MAX), ValueError, function, ": ", n,
                  " elements exceed MPI's int counts (", INT_MAX, ")");
  return static_cast<int>(n);
}

void init(int* argc, char*** argv, bool& owns) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized != 0) return;
  int provided = 0;
  check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "distributed::Environment",
            "MPI_Init_thread");
  owns = true;
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    owns = false;
    metalearn::detail::throw_error<Error>(
        "distributed::Environment: this MPI provides thread level ", provided,
        ", below MPI_THREAD_FUNNELED, which a process running tasks on worker threads needs");
  }
}

}  // namespace

Environment::Environment(int& argc, char**& argv) {
  init(&argc, &argv, owns_);
}

Environment::Environment() {
  init(nullptr, nullptr, owns_);
}

Environment::~Environment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_ && finalized == 0) MPI_Finalize();
}

Communicator::Communicator() : Communicator(MPI_COMM_WORLD) {}

Communicator::Communicator(MPI_Comm comm) : comm_(comm) {
  METALEARN_CHECK(mpi_initialized(), Error,
                  "distributed::Communicator: MPI is not initialised (create a "
                  "distributed::Environment at the start of main)");
  METALEARN_CHECK(comm != MPI_COMM_NULL, ValueError,
                  "distributed::Communicator: the communicator is MPI_COMM_NULL (a rank left out "
                  "of MPI_Comm_split?)");
  check_mpi(MPI_Comm_rank(comm_, &rank_), "distributed::Communicator", "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(comm_, &size_), "distributed::Communicator", "MPI_Comm_size");
}

void Communicator::allreduce_sum(std::span<float> data) const {
  const char* function = "distributed::Communicator::allreduce_sum";
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, data.data(), as_count(data.size(), function), MPI_FLOAT,
                          MPI_SUM, comm_),
            function, "MPI_Allreduce");
}

void Communicator::allreduce_sum(std::span<double> data) const {
  const char* function = "distributed::Communicator::allreduce_sum";
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, data.data(), as_count(data.size(), function), MPI_DOUBLE,
                          MPI_SUM, comm_),
            function, "MPI_Allreduce");
}

void Communicator::allgather(std::span<const std::byte> local, std::span<std::byte> all,
                             std::span<const std::size_t> counts) const {
  const char* function = "distributed::Communicator::allgather";
  METALEARN_CHECK(counts.size() == static_cast<std::size_t>(size_), ValueError, function, ": ",
                  counts.size(), " counts for ", size_, " ranks");
  METALEARN_CHECK(counts[static_cast<std::size_t>(rank_)] == local.size(), ValueError, function,
                  ": rank ", rank_, " sends ", local.size(), " bytes but its count is ",
                  counts[static_cast<std::size_t>(rank_)]);
  std::vector<int> sizes(counts.size());
  std::vector<int> offsets(counts.size());
  std::size_t total = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    sizes[r] = as_count(counts[r], function);
    offsets[r] = as_count(total, function);
    total += counts[r];
  }
  METALEARN_CHECK(all.size() == total, ValueError, function, ": the counts add up to ", total,
                  " bytes but the destination holds ", all.size());
  check_mpi(MPI_Allgatherv(local.data(), sizes[static_cast<std::size_t>(rank_)], MPI_BYTE,
                           all.data(), sizes.data(), offsets.data(), MPI_BYTE, comm_),
            function, "MPI_Allgatherv");
}

void Communicator::broadcast(std::vector<std::byte>& data, int root) const {
  const char* function = "distributed::Communicator::broadcast";
  METALEARN_CHECK(root >= 0 && root < size_, ValueError, function, ": root ", root,
                  " is not a rank of ", size_);
  auto n = static_cast<std::uint64_t>(data.size());
  check_mpi(MPI_Bcast(&n, 1, MPI_UINT64_T, root, comm_), function, "MPI_Bcast");
  data.resize(static_cast<std::size_t>(n));
  check_mpi(MPI_Bcast(data.data(), as_count(data.size(), function), MPI_BYTE, root, comm_),
            function, "MPI_Bcast");
}

void Communicator::barrier() const {
  check_mpi(MPI_Barrier(comm_), "distributed::Communicator::barrier", "MPI_Barrier");
}

void Communicator::abort(std::string_view message) const noexcept {
  std::fprintf(stderr, "metalearn: rank %d of %d: %.*s\n", rank_, size_,
               static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
  MPI_Abort(comm_, 1);
  std::abort();  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

}  // namespace metalearn::distributed
