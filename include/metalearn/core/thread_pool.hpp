#pragma once
/// @file
/// ThreadPool: a small fixed set of worker threads owned by whoever creates it (an
/// algorithm runs the tasks of a meta-batch on its own pool). There is no global
/// pool. run(n, fn) calls fn(i) for i in [0, n) and returns when all are done; the
/// first exception thrown by fn is rethrown in the caller.
///
/// Thread safety: run() may be called from several threads at once and from inside
/// a job of the same pool, directly or through other pools. The workers take one job
/// at a time; a call that finds them busy, or that comes from inside a job of this
/// pool, runs its items in order on the calling thread. run() therefore never waits
/// for another caller and cannot deadlock.
///
/// Handing work over is quick: a worker that finishes a job keeps watching for the
/// next one for a short while (kSpin) before it sleeps on a condition variable, and so
/// does the caller waiting for the workers. Waking a sleeping thread costs tens of
/// microseconds, as much as a small operation split over the pool; an operation that
/// follows another one closely starts without that cost.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "metalearn/core/export.hpp"

namespace metalearn {

class METALEARN_API ThreadPool {
 public:
  /// A pool with `threads` workers in total, counting the calling thread; 0 means
  /// std::thread::hardware_concurrency(). With 1, run() is a plain loop. Throws
  /// ResourceError naming `who` (a string literal: what the threads are for) when the
  /// system refuses a thread (the ones already started are stopped and joined first).
  explicit ThreadPool(std::size_t threads = 1, const char* who = "ThreadPool");
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  [[nodiscard]] std::size_t size() const { return workers_.size() + 1; }

  /// Runs fn(0) ... fn(n - 1), spread over the workers and the calling thread. A call
  /// made while another thread's job holds the workers, or from inside a job of this
  /// pool, runs fn(0) ... fn(n - 1) in order on the calling thread.
  void run(std::size_t n, const std::function<void(std::size_t)>& fn);

  /// Whether the calling thread is running a job of this pool (a worker, or a caller
  /// inside run()).
  [[nodiscard]] bool inside() const noexcept;

  /// How long a thread watches for the pool's next job, or for the end of the
  /// current one, before sleeping.
  static constexpr std::chrono::microseconds kSpin{200};

 private:
  void worker_loop(std::size_t id);
  void work(std::size_t worker);
  void stop_workers() noexcept;

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // held by the caller whose job the workers run
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  // job_ and job_size_ are written before generation_ moves on (release) and read
  // after a worker sees it move (acquire).
  const std::function<void(std::size_t)>* job_ = nullptr;
  std::size_t job_size_ = 0;
  std::atomic<std::size_t> generation_ = 0;
  std::atomic<std::size_t> busy_ = 0;  // workers still in the current job
  bool stop_ = false;
  std::exception_ptr error_;
};

/// The pool that operations called on this thread may split their work over
/// (intra-op parallelism), or nullptr: set by IntraOpScope. The setting belongs to
/// the thread, so threads running different tasks do not share it.
[[nodiscard]] METALEARN_API ThreadPool* intra_op_pool() noexcept;

/// While alive, large operations called on this thread (the image chunks of a
/// convolution and of its gradients, the channels of a batch norm and its gradient,
/// the planes of a max-pool, large elementwise maps) are spread over `pool`; nullptr turns that
/// off. Work is cut the same way and reduced in the same order for any pool size, so results are
/// bit for bit those of one thread. Scopes nest; the previous pool returns when a scope ends.
/// `pool` must not be the pool running the calling code (a ThreadPool runs one job at a time).
///
/// @code
/// ThreadPool pool(2);
/// IntraOpScope parallel(&pool);
/// auto loss = model.forward(images);   // one large batch on both threads
/// @endcode
class METALEARN_API IntraOpScope {
 public:
  explicit IntraOpScope(ThreadPool* pool) noexcept;
  ~IntraOpScope();
  IntraOpScope(const IntraOpScope&) = delete;
  IntraOpScope& operator=(const IntraOpScope&) = delete;

 private:
  ThreadPool* previous_;
};

/// fn(i) for i in [0, n): on the intra-op pool of this thread when it has one and n
/// > 1, else in order on this thread. While fn runs, no thread has an intra-op pool,
/// so operations inside fn run serially.
METALEARN_API void parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn);

/// parallel_for for an operation over `values` values in all, when that is enough to
/// pay for handing the work to the pool (32 Ki values); smaller ones run fn(i) in
/// order on this thread. The split into n items is the caller's, so results do not
/// depend on which path ran.
inline void parallel_for_large(std::size_t n, std::size_t values,
                               const std::function<void(std::size_t)>& fn) {
  constexpr std::size_t kMinValues = std::size_t{1} << 15;
  if (values >= kMinValues) {
    parallel_for(n, fn);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) fn(i);
}

}  // namespace metalearn
