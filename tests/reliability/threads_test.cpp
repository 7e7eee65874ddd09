// Threads: the pool called from several threads at once and from inside its own
// jobs, threads the system refuses to create, and backward passes on several threads
// into one shared leaf.
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <vector>

#include "reliability.hpp"

namespace reliability {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

TEST(Threads, PoolCalledFromTwoThreadsAtOnceRunsEveryItemOfBoth) {
  ml::ThreadPool pool(2);
  constexpr std::size_t kItems = 1000;
  constexpr int kRounds = 40;
  std::array<std::vector<std::atomic<int>>, 2> counts{std::vector<std::atomic<int>>(kItems),
                                                      std::vector<std::atomic<int>>(kItems)};
  std::vector<std::thread> callers;
  for (std::size_t c = 0; c < 2; ++c) {
    callers.emplace_back([&, c] {
      for (int r = 0; r < kRounds; ++r) {
        pool.run(kItems, [&](std::size_t i) { counts[c][i].fetch_add(1); });
      }
    });
  }
  for (auto& t : callers) t.join();
  for (const auto& per_caller : counts) {
    for (const auto& n : per_caller) ASSERT_EQ(n.load(), kRounds);
  }
}

TEST(Threads, PoolCalledFromInsideItsOwnJobRunsTheInnerItemsInline) {
  ml::ThreadPool pool(2);
  std::vector<std::atomic<int>> inner(4 * 3);
  std::atomic<int> inline_calls = 0;
  pool.run(4, [&](std::size_t i) {
    EXPECT_TRUE(pool.inside());
    const auto self = std::this_thread::get_id();
    pool.run(3, [&](std::size_t j) {
      if (std::this_thread::get_id() == self) inline_calls.fetch_add(1);
      inner[i * 3 + j].fetch_add(1);
    });
  });
  EXPECT_FALSE(pool.inside());
  for (const auto& n : inner) EXPECT_EQ(n.load(), 1);
  EXPECT_EQ(inline_calls.load(), 12);  // every inner item on the thread that asked for it
}

TEST(Threads, PoolsCallingEachOtherFromDifferentThreadsDoNotDeadlock) {
  ml::ThreadPool outer(2);
  ml::ThreadPool middle(2);
  std::atomic<int> items = 0;
  outer.run(2, [&](std::size_t) {
    middle.run(2, [&](std::size_t) { outer.run(3, [&](std::size_t) { items.fetch_add(1); }); });
  });
  EXPECT_EQ(items.load(), 2 * 2 * 3);
}

TEST(Threads, PoolRethrowsAnItemsErrorToTheCallerWhoseJobThrew) {
  ml::ThreadPool pool(2);
  std::atomic<int> clean = 0;
  std::thread other([&] {
    for (int r = 0; r < 50; ++r) pool.run(8, [&](std::size_t) { clean.fetch_add(1); });
  });
  for (int r = 0; r < 50; ++r) {
    expect_error<ml::ValueError>(
        [&] {
          pool.run(8, [](std::size_t i) {
            if (i == 5) throw ml::ValueError("item 5 failed");
          });
        },
        "item 5 failed");
  }
  other.join();
  EXPECT_EQ(clean.load(), 50 * 8);
}

/// Lets this process's address space grow by `room` bytes only, and gives new
/// threads stacks of `stack` bytes, so that the stacks the C library keeps from
/// threads that ended (of the default size) are not reused and every new thread
/// needs a fresh mapping. For death tests: it runs in the forked child.
void limit_threads(rlim_t room, std::size_t stack) {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0 || pthread_attr_setstacksize(&attr, stack) != 0 ||
      pthread_setattr_default_np(&attr) != 0) {
    std::_Exit(4);
  }
  pthread_attr_destroy(&attr);
  std::ifstream statm("/proc/self/statm");
  unsigned long long pages = 0;
  statm >> pages;
  const auto used = static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE));
  const rlimit limit{used + room, used + room};
  if (setrlimit(RLIMIT_AS, &limit) != 0) std::_Exit(3);
}

constexpr std::size_t kStack = std::size_t{16} << 20;

/// Exits 0 when `f` throws ResourceError naming `who`; otherwise prints what
/// happened and exits 1.
template <class F>
[[noreturn]] void exit_with_resource_error(F f, const char* who, rlim_t room = rlim_t{2} << 20) {
  limit_threads(room, kStack);
  try {
    f();
  } catch (const ml::ResourceError& e) {
    if (std::string(e.what()).find(who) != std::string::npos) std::_Exit(0);
    std::fprintf(stderr, "ResourceError without '%s': %s\n", who, e.what());
    std::_Exit(1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "other exception: %s\n", e.what());
    std::_Exit(1);
  }
  std::fprintf(stderr, "nothing thrown\n");
  std::_Exit(1);
}

TEST(Threads, ThreadPoolSaysTheSystemRefusedAThread) {
  if (kSanitized) GTEST_SKIP() << "sanitizers reserve more address space than the limit allows";
  EXPECT_EXIT(exit_with_resource_error([] { ml::ThreadPool pool(4); },
                                       "ThreadPool: could not "
                                       "start a thread"),
              ::testing::ExitedWithCode(0), "^$");
}

TEST(Threads, ThreadPoolStopsTheWorkersItStartedWhenALaterOneIsRefused) {
  if (kSanitized) GTEST_SKIP() << "sanitizers reserve more address space than the limit allows";
  // Room for one stack and some heap: the first worker starts, the second is refused;
  // the error arrives only after the first was stopped and joined (no hang).
  EXPECT_EXIT(
      exit_with_resource_error([] { ml::ThreadPool pool(4); },
                               "ThreadPool: could not start a thread", kStack + (rlim_t{4} << 20)),
      ::testing::ExitedWithCode(0), "^$");
}

TEST(Threads, PrefetchingSamplerSaysTheSystemRefusedAThread) {
  if (kSanitized) GTEST_SKIP() << "sanitizers reserve more address space than the limit allows";
  ml::data::SinusoidTasks<float> family({.shots = 5, .queries = 5});
  EXPECT_EXIT(exit_with_resource_error(
                  [&] {
                    ml::data::MetaBatchSampler<float> batches(family, {.batch = 2, .prefetch = 1});
                    (void)batches.next();
                  },
                  "MetaBatchSampler: prefetch"),
              ::testing::ExitedWithCode(0), "^$");
  EXPECT_EXIT(exit_with_resource_error(
                  [&] {
                    ml::data::MetaBatchSampler<float> batches(family, {.batch = 4, .threads = 2});
                    (void)batches.next();
                  },
                  "MetaBatchSampler: sampling threads"),
              ::testing::ExitedWithCode(0), "^$");
}

TEST(Threads, BackwardFromFourThreadsIntoOneLeafSumsEveryPass) {
  // Integer-valued gradients: their sums are exact in any order, so the result is
  // checked exactly whatever order the threads' passes took.
  auto w = ml::Tensor<double>::empty({64});
  for (ml::Index i = 0; i < 64; ++i) w.data()[i] = static_cast<double>(i % 7);
  w.requires_grad(true);
  constexpr int kThreads = 4;
  constexpr int kPasses = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&w, t] {
      auto x = ml::full<double>({64}, static_cast<double>(t + 1));
      for (int p = 0; p < kPasses; ++p) ml::sum(ml::mul(w, x)).backward();
    });
  }
  for (auto& t : threads) t.join();
  // d/dw sum(w * x) = x; summed over passes and threads: 100 * (1 + 2 + 3 + 4).
  const auto g = w.grad();
  ASSERT_TRUE(g.defined());
  for (ml::Index i = 0; i < 64; ++i) ASSERT_EQ(g.data()[i], 1000.0) << "at " << i;
}

TEST(Threads, ModuleParametersSharedByThreadsGetEveryThreadsGradient) {
  ml::Generator gen(3);
  ml::nn::Linear<double> layer(8, 4, gen);
  auto x = ml::full<double>({5, 8}, 1.0);
  // One thread's gradient, for reference.
  ml::sum(layer.forward(x)).backward();
  std::vector<std::vector<double>> one;
  for (const auto& [name, p] : layer.named_parameters()) one.push_back(p.grad().to_vector());
  layer.zero_grad();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int p = 0; p < 25; ++p) ml::sum(layer.forward(x)).backward();
    });
  }
  for (auto& t : threads) t.join();
  std::size_t k = 0;
  for (const auto& [name, p] : layer.named_parameters()) {
    const auto g = p.grad().to_vector();
    ASSERT_EQ(g.size(), one[k].size()) << name;
    for (std::size_t i = 0; i < g.size(); ++i) {
      ASSERT_EQ(g[i], 100.0 * one[k][i]) << name << " at " << i;  // integers: exact
    }
    ++k;
  }
}

}  // namespace
}  // namespace reliability
