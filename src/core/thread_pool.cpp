#include "metalearn/core/thread_pool.hpp"

#include <algorithm>

namespace metalearn {

namespace {

/// Whether done() turns true within ThreadPool::kSpin, watching it without sleeping
/// (but yielding the core between looks).
template <class Done>
bool spin_until(Done done) {
  const auto until = std::chrono::steady_clock::now() + ThreadPool::kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    if (std::chrono::steady_clock::now() >= until) return done();
    // Lets a thread that waits for this core run: with more threads than cores,
    // the work being watched for may be that thread's.
    std::this_thread::yield();
  }
}

}  // namespace

ThreadPool::ThreadPool(std::size_t threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  workers_.reserve(threads - 1);
  for (std::size_t i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

// Worker w handles indices w, w + size(), w + 2 size(), ...: a fixed assignment,
// so which thread runs which index never depends on timing.
void ThreadPool::work(std::size_t worker) {
  for (std::size_t i = worker; i < job_size_; i += size()) {
    try {
      (*job_)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }
}

void ThreadPool::worker_loop(std::size_t id) {
  std::size_t seen = 0;
  for (;;) {
    const auto fresh = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    if (!spin_until(fresh)) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || fresh(); });
      if (stop_) return;
    }
    seen = generation_.load(std::memory_order_acquire);
    work(id);
    if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // The caller may be asleep on done_: notify under the mutex, so that it is
      // either still before its check of busy_ or already waiting.
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_one();
    }
  }
}

void ThreadPool::run(std::size_t n, const std::function<void(std::size_t)>& fn) {
  if (workers_.empty() || n <= 1) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    job_size_ = n;
    busy_.store(workers_.size(), std::memory_order_relaxed);
    error_ = nullptr;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  work(0);
  const auto finished = [&] { return busy_.load(std::memory_order_acquire) == 0; };
  std::exception_ptr error;
  {
    const bool watched = spin_until(finished);
    std::unique_lock<std::mutex> lock(mutex_);
    if (!watched) done_.wait(lock, finished);
    job_ = nullptr;
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

namespace {
thread_local ThreadPool* t_intra_op_pool = nullptr;
}  // namespace

ThreadPool* intra_op_pool() noexcept {
  return t_intra_op_pool;
}

IntraOpScope::IntraOpScope(ThreadPool* pool) noexcept : previous_(t_intra_op_pool) {
  t_intra_op_pool = pool;
}

IntraOpScope::~IntraOpScope() {
  t_intra_op_pool = previous_;
}

void parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn) {
  ThreadPool* pool = t_intra_op_pool;
  if (pool == nullptr || pool->size() == 1 || n <= 1) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  const IntraOpScope serial(nullptr);  // the workers never have a pool of their own
  pool->run(n, fn);
}

}  // namespace metalearn
