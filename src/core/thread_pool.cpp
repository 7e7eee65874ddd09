#include "metalearn/core/thread_pool.hpp"

#include <algorithm>

#include "metalearn/core/thread.hpp"

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

/// The pools whose jobs the calling thread is inside, innermost first: a chain of
/// frames on the thread's own stack.
struct PoolFrame {
  const ThreadPool* pool;
  const PoolFrame* outer;
};
thread_local const PoolFrame* t_pools = nullptr;

/// Enters `pool` on this thread for the frame's lifetime.
class EnterPool {
 public:
  explicit EnterPool(const ThreadPool* pool) noexcept : frame_{pool, t_pools} { t_pools = &frame_; }
  ~EnterPool() { t_pools = frame_.outer; }
  EnterPool(const EnterPool&) = delete;
  EnterPool& operator=(const EnterPool&) = delete;

 private:
  PoolFrame frame_;
};

}  // namespace

ThreadPool::ThreadPool(std::size_t threads, const char* who) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  workers_.reserve(threads - 1);
  try {
    for (std::size_t i = 1; i < threads; ++i) {
      workers_.push_back(detail::start_thread(who, [this, i] { worker_loop(i); }));
    }
  } catch (...) {
    stop_workers();
    throw;
  }
}

ThreadPool::~ThreadPool() {
  stop_workers();
}

void ThreadPool::stop_workers() noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

bool ThreadPool::inside() const noexcept {
  for (const PoolFrame* f = t_pools; f != nullptr; f = f->outer) {
    if (f->pool == this) return true;
  }
  return false;
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
  const EnterPool inside(this);
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
  // The workers run one job at a time. A call from inside a job of this pool, or one
  // made while another thread's job holds the workers, runs on the calling thread:
  // waiting could deadlock (the job holding the workers may be waiting for this
  // thread), and the items give the same results on any thread.
  std::unique_lock<std::mutex> turn(run_mutex_, std::defer_lock);
  if (workers_.empty() || n <= 1 || inside() || !turn.try_lock()) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  const EnterPool entered(this);
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
