// The collectives of distributed::DistributedTrainer timed alone: an all-reduce of a
// float buffer of B bytes (the default mode's one call per step) and an all-gather of
// T tasks' gradients of B bytes each (the deterministic mode's), each after a barrier,
// the median of N repetitions on every rank (rank 0 prints the slowest rank's median).
//
// Usage: mpirun -np R bench_collective [--bytes 449080] [--tasks 32] [--repeats 100]
// (the defaults: MAML (paper)'s ConvNet4 gradient with its statistics, meta-batch 32).

#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <metalearn/distributed.hpp>
#include <vector>

namespace dist = metalearn::distributed;

namespace {

// The median over repetitions of fn()'s seconds on this rank, then the largest median
// over the ranks.
template <class F>
double median_seconds(const dist::Communicator& world, int repeats, F&& fn) {
  std::vector<double> seconds;
  for (int i = 0; i < repeats; ++i) {
    world.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(seconds.begin(), seconds.begin() + repeats / 2, seconds.end());
  double median = seconds[static_cast<std::size_t>(repeats / 2)];
  MPI_Allreduce(MPI_IN_PLACE, &median, 1, MPI_DOUBLE, MPI_MAX, world.handle());
  return median;
}

}  // namespace

int main(int argc, char** argv) {
  dist::Environment mpi(argc, argv);
  const dist::Communicator world;
  std::size_t bytes = 449'080;
  std::size_t tasks = 32;
  int repeats = 100;
  CLI::App app("bench_collective: the trainer's collectives timed alone");
  app.add_option("--bytes", bytes, "bytes of one gradient (all-reduce buffer)")
      ->capture_default_str();
  app.add_option("--tasks", tasks, "tasks of a meta-batch (all-gather: tasks x bytes)")
      ->capture_default_str();
  app.add_option("--repeats", repeats, "repetitions (the median is reported)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  const auto ranks = static_cast<std::size_t>(world.size());
  std::vector<float> buffer(bytes / sizeof(float), 1.0F);
  const double reduce = median_seconds(world, repeats, [&] { world.allreduce_sum(buffer); });

  // Rank r holds tasks r, r + R, ... (the trainer's shards).
  std::vector<std::size_t> counts(ranks);
  std::size_t total = 0;
  for (std::size_t r = 0; r < ranks; ++r) {
    counts[r] = (r < tasks ? (tasks - r + ranks - 1) / ranks : 0) * bytes;
    total += counts[r];
  }
  std::vector<std::byte> local(counts[static_cast<std::size_t>(world.rank())]);
  std::vector<std::byte> all(total);
  const double gather =
      median_seconds(world, repeats, [&] { world.allgather(local, all, counts); });

  if (world.rank() == 0) {
    std::printf(
        "ranks %zu: all-reduce of %zu B: %.3f ms; all-gather of %zu tasks x %zu B "
        "(%zu B in on every rank): %.3f ms (medians of %d, the slowest rank's)\n",
        ranks, bytes, 1e3 * reduce, tasks, bytes, total, 1e3 * gather, repeats);
  }
  return 0;
}
