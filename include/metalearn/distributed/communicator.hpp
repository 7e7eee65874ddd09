#pragma once
/// @file
/// The MPI layer of metalearn::distributed: the process environment (MPI_Init /
/// MPI_Finalize), a communicator with the few collectives data-parallel meta-training
/// uses (one all-reduce or all-gather per step, broadcasts of a learner's state), and
/// the rule for errors: a rank that throws prints its message and ends the whole job
/// with MPI_Abort, so that no other rank waits forever in a collective.
///
/// @code
/// int main(int argc, char** argv) {
///   metalearn::distributed::Environment mpi(argc, argv);
///   metalearn::distributed::Communicator world;  // MPI_COMM_WORLD
///   std::printf("rank %d of %d\n", world.rank(), world.size());
/// }
/// @endcode
// SPDX-License-Identifier: MIT

#include <mpi.h>

#include <cstddef>
#include <exception>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace metalearn::distributed {

/// Initialises MPI for the life of the object (MPI_Init_thread asking for
/// MPI_THREAD_FUNNELED: only the thread that created the object calls MPI; the
/// library's worker threads never do) and finalises it when destroyed. When MPI was
/// initialised already (by the program or another library) it does neither.
class Environment {
 public:
  /// Initialises MPI with the program's arguments (MPI may remove its own).
  /// @throws Error when MPI_Init_thread fails or gives less than MPI_THREAD_FUNNELED.
  Environment(int& argc, char**& argv);
  /// Initialises MPI without the program's arguments.
  Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
  /// Calls MPI_Finalize when this object initialised MPI.
  ~Environment();

 private:
  bool owns_ = false;
};

/// A view of an MPI communicator (MPI_COMM_WORLD by default, or any the caller
/// created, which must outlive this view) with the collectives the trainer uses.
/// Every collective must be called by every rank of the communicator in the same
/// order, as with MPI itself.
class Communicator {
 public:
  /// MPI_COMM_WORLD. @throws Error when MPI is not initialised (create an
  /// Environment first).
  Communicator();
  /// The communicator `comm` (not owned). @throws Error when MPI is not initialised
  /// or `comm` is MPI_COMM_NULL.
  explicit Communicator(MPI_Comm comm);

  /// This process's rank, from 0.
  [[nodiscard]] int rank() const noexcept { return rank_; }
  /// The number of ranks.
  [[nodiscard]] int size() const noexcept { return size_; }
  /// The MPI communicator.
  [[nodiscard]] MPI_Comm handle() const noexcept { return comm_; }

  /// Replaces `data` on every rank by its elementwise sum over the ranks
  /// (MPI_Allreduce; the order of the additions is MPI's, so the result may differ
  /// in the last bits between rank counts).
  void allreduce_sum(std::span<float> data) const;
  /// @copydoc allreduce_sum(std::span<float>) const
  void allreduce_sum(std::span<double> data) const;
  /// Gathers every rank's `local` bytes into `all` on every rank, rank 0's first
  /// (MPI_Allgatherv). `counts[r]` is the number of bytes rank r sends (so
  /// `counts[rank()] == local.size()`), and `all` holds their sum.
  /// @throws ValueError when the sizes disagree or exceed MPI's int counts.
  void allgather(std::span<const std::byte> local, std::span<std::byte> all,
                 std::span<const std::size_t> counts) const;
  /// Replaces `data` on every rank by rank `root`'s, resizing it (its size is sent
  /// first).
  void broadcast(std::vector<std::byte>& data, int root = 0) const;
  /// Waits until every rank has called it.
  void barrier() const;
  /// Prints "metalearn: rank r of R: message" on stderr and ends every process of
  /// the job with MPI_Abort (exit code 1). Never returns.
  [[noreturn]] void abort(std::string_view message) const noexcept;

 private:
  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
};

/// Runs `fn()`; when it throws, prints the exception's message with this rank's
/// number and aborts the job (Communicator::abort), so that a rank that fails never
/// leaves the others waiting in a collective.
template <class F>
decltype(auto) or_abort(const Communicator& comm, F&& fn) {
  try {
    return std::forward<F>(fn)();
  } catch (const std::exception& e) {
    comm.abort(e.what());
  } catch (...) {
    comm.abort("an exception that is not a std::exception");
  }
}

}  // namespace metalearn::distributed
