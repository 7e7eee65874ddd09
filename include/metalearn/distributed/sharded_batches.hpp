#pragma once
/// @file
/// ShardedBatches: one rank's share of the meta-batches of a data::MetaBatchSampler
/// stream, drawn without communication.
// SPDX-License-Identifier: MIT

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/data/meta_batch_sampler.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/data/task_sampler.hpp"

namespace metalearn::distributed {

/// The tasks of meta-batch `position` that rank `rank` of `ranks` computes: global
/// indices rank, rank + ranks, ... below the batch size (none when the batch is
/// smaller than the rank).
inline std::vector<std::size_t> shard_indices(std::size_t batch, int rank, int ranks) {
  METALEARN_CHECK(ranks >= 1 && rank >= 0 && rank < ranks, ValueError,
                  "distributed::shard_indices: rank ", rank, " of ", ranks, " ranks");
  std::vector<std::size_t> out;
  for (auto j = static_cast<std::size_t>(rank); j < batch; j += static_cast<std::size_t>(ranks)) {
    out.push_back(j);
  }
  return out;
}

/// Rank `rank`'s share of the meta-batches a data::MetaBatchSampler with the same
/// sampler and options draws: of each meta-batch, the tasks of global indices rank,
/// rank + ranks, ... Task j of batch p comes from the generator seeded by
/// derive_seed({seed, split, p * batch + j}), as in the single-process stream, so the
/// union of the shards of all ranks is the single-process meta-batch, whatever the
/// number of ranks (a batch that does not divide evenly leaves the last ranks one
/// task short, or with none). Nothing is communicated. A shard is drawn on the calling
/// thread (MetaBatchOptions::threads and prefetch are not used).
///
/// Satisfies train::BatchStream (next() and set_position()), so the position follows
/// the learner's step count on resume.
///
/// @code
/// data::MetaBatchOptions opts{.batch = 25, .seed = 1};
/// distributed::ShardedBatches<float> shard(family, opts, world.rank(), world.size());
/// data::TaskBatch<float> mine = shard.next();  // tasks rank, rank + size, ...
/// @endcode
template <class T>
class ShardedBatches {
 public:
  using value_type = T;

  /// Shards the stream of `sampler` (any data::TaskSampler of T) with `options`.
  /// @throws ValueError when batch < 1 or the rank is not one of `ranks`.
  template <class S>
  ShardedBatches(S sampler, data::MetaBatchOptions options, int rank, int ranks)
      : sampler_(std::move(sampler)), options_(options), rank_(rank), ranks_(ranks) {
    METALEARN_CHECK(options_.batch >= 1, ValueError,
                    "distributed::ShardedBatches: batch must be >= 1, got ", options_.batch);
    indices_ = shard_indices(static_cast<std::size_t>(options_.batch), rank, ranks);
  }

  /// This rank's tasks of the batch at position(), in global order; advances the
  /// position by one. Empty when the meta-batch has fewer tasks than `rank` + 1.
  data::TaskBatch<T> next() {
    data::TaskBatch<T> out = batch_at(position_);
    ++position_;
    return out;
  }

  /// This rank's tasks of batch `position`, without changing the position.
  [[nodiscard]] data::TaskBatch<T> batch_at(std::uint64_t position) const {
    data::TaskBatch<T> out;
    out.reserve(indices_.size());
    const std::uint64_t first = position * static_cast<std::uint64_t>(options_.batch);
    for (std::size_t j : indices_) {
      Generator gen(derive_seed({options_.seed, static_cast<std::uint64_t>(options_.split),
                                 first + static_cast<std::uint64_t>(j)}));
      out.push_back(sampler_.sample(gen));
    }
    return out;
  }

  /// The index of the batch next() draws.
  [[nodiscard]] std::uint64_t position() const { return position_; }
  /// Continues at batch `position` (after a resume).
  void set_position(std::uint64_t position) { position_ = position; }

  /// Tasks in a whole meta-batch (over every rank).
  [[nodiscard]] std::size_t batch_size() const { return static_cast<std::size_t>(options_.batch); }
  /// The global indices of this rank's tasks within a meta-batch.
  [[nodiscard]] const std::vector<std::size_t>& indices() const { return indices_; }
  /// This rank.
  [[nodiscard]] int rank() const { return rank_; }
  /// The number of ranks sharing the stream.
  [[nodiscard]] int ranks() const { return ranks_; }
  /// The options of the whole stream.
  [[nodiscard]] const data::MetaBatchOptions& options() const { return options_; }

 private:
  data::AnyTaskSampler<T> sampler_;
  data::MetaBatchOptions options_;
  int rank_;
  int ranks_;
  std::vector<std::size_t> indices_;
  std::uint64_t position_ = 0;
};

}  // namespace metalearn::distributed
