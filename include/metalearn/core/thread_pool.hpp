#pragma once
// ThreadPool: a small fixed set of worker threads owned by whoever creates it (an
// algorithm runs the tasks of a meta-batch on its own pool). There is no global
// pool. run(n, fn) calls fn(i) for i in [0, n) and returns when all are done; the
// first exception thrown by fn is rethrown in the caller.

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace metalearn {

class ThreadPool {
 public:
  /// A pool with `threads` workers in total, counting the calling thread; 0 means
  /// std::thread::hardware_concurrency(). With 1, run() is a plain loop.
  explicit ThreadPool(std::size_t threads = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  [[nodiscard]] std::size_t size() const { return workers_.size() + 1; }

  /// Runs fn(0) ... fn(n - 1), spread over the workers and the calling thread.
  void run(std::size_t n, const std::function<void(std::size_t)>& fn);

 private:
  void worker_loop(std::size_t id);
  void work(std::size_t worker);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(std::size_t)>* job_ = nullptr;
  std::size_t job_size_ = 0;
  std::size_t generation_ = 0;
  std::size_t busy_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace metalearn
