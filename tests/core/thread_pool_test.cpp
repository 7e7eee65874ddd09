// ThreadPool: every index runs once on its fixed thread, exceptions reach the caller,
// and jobs handed over back to back (the workers still watching) or after the workers
// have gone to sleep both complete.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "metalearn/core/thread_pool.hpp"

namespace {

using metalearn::ThreadPool;

TEST(ThreadPool, RunsEveryIndexOnceOnItsFixedThread) {
  for (std::size_t threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    ASSERT_EQ(pool.size(), threads);
    for (std::size_t n : {0, 1, 2, 5, 17}) {
      std::vector<std::atomic<int>> hits(n);
      std::vector<std::thread::id> ran_on(n);
      pool.run(n, [&](std::size_t i) {
        hits[i].fetch_add(1);
        ran_on[i] = std::this_thread::get_id();
      });
      for (std::size_t i = 0; i < n; ++i) {
        EXPECT_EQ(hits[i].load(), 1) << threads << " threads, index " << i << " of " << n;
        // Index i belongs to thread i % size(); thread 0 is the caller.
        if (i % threads == 0) {
          EXPECT_EQ(ran_on[i], std::this_thread::get_id());
        }
        if (i >= threads) {
          EXPECT_EQ(ran_on[i], ran_on[i - threads]);
        }
      }
      if (n >= threads && threads > 1) {
        EXPECT_EQ(std::set<std::thread::id>(ran_on.begin(), ran_on.end()).size(), threads);
      }
    }
  }
}

TEST(ThreadPool, JobsBackToBackAndAfterTheWorkersSleep) {
  ThreadPool pool(3);
  std::vector<long> out(7, 0);
  const auto job = [&](std::size_t i) { out[i] += static_cast<long>(i) + 1; };
  // Back to back: each job starts while the workers still watch for it.
  constexpr int kRounds = 5000;
  for (int r = 0; r < kRounds; ++r) pool.run(out.size(), job);
  for (std::size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i], kRounds * (static_cast<long>(i) + 1));
  }
  // With pauses well past the watching time, so that every job wakes sleeping workers.
  for (int r = 0; r < 5; ++r) {
    std::this_thread::sleep_for(ThreadPool::kSpin * 10);
    pool.run(out.size(), job);
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i], (kRounds + 5) * (static_cast<long>(i) + 1));
  }
}

TEST(ThreadPool, RethrowsAWorkersExceptionAndStaysUsable) {
  ThreadPool pool(2);
  std::atomic<int> ran{0};
  EXPECT_THROW(pool.run(4,
                        [&](std::size_t i) {
                          ran.fetch_add(1);
                          if (i == 1) throw std::runtime_error("index 1 failed");
                        }),
               std::runtime_error);
  EXPECT_EQ(ran.load(), 4);  // the other indices still ran
  std::atomic<int> after{0};
  pool.run(6, [&](std::size_t) { after.fetch_add(1); });
  EXPECT_EQ(after.load(), 6);
}

TEST(ThreadPool, ParallelForSpreadsOverTheScopesPool) {
  ThreadPool pool(2);
  const metalearn::IntraOpScope scope(&pool);
  for (int r = 0; r < 1000; ++r) {
    std::vector<std::thread::id> ran_on(2);
    std::atomic<bool> nested_serial{true};
    metalearn::parallel_for(2, [&](std::size_t i) {
      ran_on[i] = std::this_thread::get_id();
      if (metalearn::intra_op_pool() != nullptr) nested_serial.store(false);
    });
    ASSERT_NE(ran_on[0], ran_on[1]);
    ASSERT_TRUE(nested_serial.load());  // inside, operations run serially
  }
  EXPECT_EQ(metalearn::intra_op_pool(), &pool);
}

}  // namespace
