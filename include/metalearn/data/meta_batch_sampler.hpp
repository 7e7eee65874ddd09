#pragma once
/// @file
/// MetaBatchSampler: reproducible meta-batches of tasks, optionally parallel and prefetched.

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/thread.hpp"
#include "metalearn/core/thread_pool.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/data/task_sampler.hpp"

namespace metalearn::data {

/// Options of MetaBatchSampler (designated-initializer friendly).
struct MetaBatchOptions {
  /// Tasks per meta-batch.
  Index batch = 1;
  /// Seed of the run.
  std::uint64_t seed = 0;
  /// Stream of tasks (train / validation / test); part of every task's seed.
  Split split = Split::kTrain;
  /// Threads sampling the tasks of one batch (1: serial). Does not change the tasks.
  int threads = 1;
  /// Batches a background thread keeps ready (0: no background thread). Does not
  /// change the tasks.
  Index prefetch = 0;
};

namespace detail {

/// Draws batch `position`: task j is sampled from a generator seeded by
/// derive_seed({seed, split, position * batch + j}), on `pool` when given (the
/// tasks do not depend on it).
template <class T>
TaskBatch<T> draw_meta_batch(const AnyTaskSampler<T>& sampler, const MetaBatchOptions& options,
                             std::uint64_t position, ThreadPool* pool) {
  const auto n = static_cast<std::size_t>(options.batch);
  TaskBatch<T> batch(n);
  const std::uint64_t first = position * static_cast<std::uint64_t>(options.batch);
  auto draw = [&](std::size_t j) {
    Generator gen = task_generator(options.seed, options.split, first + j);
    batch[j] = sampler.sample(gen);
  };
  if (pool == nullptr || pool->size() <= 1 || n <= 1) {
    for (std::size_t j = 0; j < n; ++j) draw(j);
    return batch;
  }
  std::vector<std::exception_ptr> errors(n);
  pool->run(n, [&](std::size_t j) {
    try {
      draw(j);
    } catch (...) {
      errors[j] = std::current_exception();
    }
  });
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);  // the error of the lowest task index, as when serial
  }
  return batch;
}

/// A background thread producing batches start, start+1, ... into a bounded queue.
template <class T>
class Prefetcher {
 public:
  /// Draws on `pool` (null: serially), which must outlive the prefetcher.
  Prefetcher(AnyTaskSampler<T> sampler, MetaBatchOptions options, std::uint64_t start,
             ThreadPool* pool)
      : sampler_(std::move(sampler)), options_(options), next_(start), pool_(pool) {
    worker_ = metalearn::detail::start_thread("MetaBatchSampler: prefetch", [this] { run(); });
  }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;
  ~Prefetcher() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  /// The next batch in order (blocks until it is ready); rethrows a sampling error.
  TaskBatch<T> pop() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return !queue_.empty(); });
    Slot slot = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    cv_.notify_all();
    if (slot.error) std::rethrow_exception(slot.error);
    return std::move(slot.batch);
  }

 private:
  struct Slot {
    TaskBatch<T> batch;
    std::exception_ptr error;
  };

  void run() {
    const auto capacity = static_cast<std::size_t>(options_.prefetch);
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || queue_.size() < capacity; });
        if (stop_) return;
      }
      Slot slot;
      try {
        slot.batch = draw_meta_batch(sampler_, options_, next_, pool_);
      } catch (...) {
        slot.error = std::current_exception();
      }
      ++next_;
      {
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(slot));
      }
      cv_.notify_all();
    }
  }

  AnyTaskSampler<T> sampler_;
  MetaBatchOptions options_;
  std::uint64_t next_;
  ThreadPool* pool_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Slot> queue_;
  bool stop_ = false;
  std::thread worker_;  // last: started after every other member exists
};

}  // namespace detail

/// Draws meta-batches of tasks reproducibly.
///
/// Task i of a run (i = position * batch + j for task j of batch `position`) is drawn from
/// a generator seeded by `derive_seed({seed, split, i})`. The tasks therefore depend only
/// on (sampler, seed, split, batch): not on `threads`, not on `prefetch`, and not on how
/// many batches were drawn before a resume. Save `position()` with a checkpoint and call
/// `set_position()` after loading it to continue the same stream.
///
/// The tasks of a batch are sampled on a core::ThreadPool of `threads` owned by this
/// object. Threads the system refuses to create are a ResourceError from the
/// constructor (for `threads`) or from next() (for `prefetch`), with no thread left
/// running.
///
/// With `prefetch > 0` a background std::thread owned by this object keeps up to `prefetch`
/// batches ready; it is stopped and joined by the destructor and by set_position().
///
/// @code
/// data::SinusoidTasks<float> family({.shots = 10, .queries = 10});
/// data::MetaBatchSampler batches(family, {.batch = 25, .seed = 1, .prefetch = 2});
/// data::TaskBatch<float> b = batches.next();
/// @endcode
template <class T>
class METALEARN_API MetaBatchSampler {
 public:
  using value_type = T;

  /// Wraps a copy of `sampler`. Throws ValueError for batch < 1, threads < 1 or prefetch < 0.
  template <class S>
  explicit MetaBatchSampler(S sampler, MetaBatchOptions options = {})
      : sampler_(checked_sampler(std::move(sampler))), options_(options) {
    METALEARN_CHECK(options_.batch >= 1, ValueError, "MetaBatchSampler: batch must be >= 1, got ",
                    options_.batch);
    METALEARN_CHECK(options_.threads >= 1, ValueError,
                    "MetaBatchSampler: threads must be >= 1, got ", options_.threads);
    METALEARN_CHECK(options_.prefetch >= 0, ValueError,
                    "MetaBatchSampler: prefetch must be >= 0, got ", options_.prefetch);
    if (options_.threads > 1 && options_.batch > 1) {
      pool_ = std::make_unique<ThreadPool>(
          static_cast<std::size_t>(std::min<Index>(options_.threads, options_.batch)),
          "MetaBatchSampler: sampling threads");
    }
  }

  MetaBatchSampler(const MetaBatchSampler&) = delete;
  MetaBatchSampler& operator=(const MetaBatchSampler&) = delete;
  MetaBatchSampler(MetaBatchSampler&&) noexcept = default;
  MetaBatchSampler& operator=(MetaBatchSampler&&) noexcept = default;
  ~MetaBatchSampler() = default;  // the prefetcher joins its thread

  /// The batch at position(); advances the position by one.
  TaskBatch<T> next() {
    TaskBatch<T> out;
    if (options_.prefetch > 0) {
      if (!prefetcher_) {
        prefetcher_ =
            std::make_unique<detail::Prefetcher<T>>(sampler_, options_, position_, pool_.get());
      }
      out = prefetcher_->pop();
    } else {
      out = detail::draw_meta_batch(sampler_, options_, position_, pool_.get());
    }
    ++position_;
    return out;
  }

  /// Batch `position` of the run, without changing the sampler's position.
  [[nodiscard]] TaskBatch<T> batch_at(std::uint64_t position) const {
    return detail::draw_meta_batch(sampler_, options_, position, pool_.get());
  }

  /// Number of batches drawn so far (the index of the batch next() returns).
  [[nodiscard]] std::uint64_t position() const { return position_; }

  /// Continues the run at batch `position` (e.g. after loading a checkpoint).
  void set_position(std::uint64_t position) {
    prefetcher_.reset();  // joins the worker; batches it prepared are discarded
    position_ = position;
  }

  /// The seed of task `task_index` of the run.
  [[nodiscard]] std::uint64_t task_seed(std::uint64_t task_index) const {
    return derive_seed({options_.seed, static_cast<std::uint64_t>(options_.split), task_index});
  }

  [[nodiscard]] const MetaBatchOptions& options() const { return options_; }
  [[nodiscard]] const AnyTaskSampler<T>& sampler() const { return sampler_; }

 private:
  template <class S>
  static AnyTaskSampler<T> checked_sampler(S sampler) {
    static_assert(TaskSampler<S>,
                  "MetaBatchSampler: the sampler must provide `data::Task<T> sample(Generator& "
                  "gen) const` drawing a task with gen only (the data::TaskSampler concept)");
    if constexpr (TaskSampler<S>) {
      static_assert(std::same_as<sampler_value_t<S>, T>,
                    "MetaBatchSampler<T>: the sampler's tasks hold another scalar type than T");
      return AnyTaskSampler<T>(std::move(sampler));
    } else {
      return {};
    }
  }

  AnyTaskSampler<T> sampler_;
  MetaBatchOptions options_;
  std::uint64_t position_ = 0;
  std::unique_ptr<ThreadPool> pool_;  // before prefetcher_, which draws on it
  std::unique_ptr<detail::Prefetcher<T>> prefetcher_;
};

template <TaskSampler S>
MetaBatchSampler(S, MetaBatchOptions) -> MetaBatchSampler<sampler_value_t<S>>;
template <TaskSampler S>
MetaBatchSampler(S) -> MetaBatchSampler<sampler_value_t<S>>;

}  // namespace metalearn::data
