// Independent graphs built and differentiated on several threads at once give
// bitwise the same results as the serial run.

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "metalearn/autograd.hpp"
#include "metalearn/tensor.hpp"
#include "support/tensor_assertions.hpp"

namespace ml = metalearn;
namespace mt = metalearn::testing;
namespace ag = metalearn::autograd;
using TD = ml::Tensor<double>;

namespace {

struct Result {
  TD loss, grad_w1, grad_w2, hvp_w1;
};

/// One task: a second-order gradient of a small MLP loss with data drawn from the
/// task's own generator.
Result run_task(std::uint64_t task) {
  ml::Generator gen(ml::derive_seed({99, task}));
  TD x = ml::randn<double>({8, 3}, gen);
  TD y = ml::randn<double>({8, 1}, gen);
  TD w1 = ml::randn<double>({3, 5}, gen).requires_grad(true);
  TD w2 = ml::randn<double>({5, 1}, gen).requires_grad(true);
  TD h = ml::tanh(ml::matmul(x, w1));
  TD loss = ml::add(ml::mse_loss(ml::matmul(h, w2), y), ml::mean(ml::softplus(h)));
  auto g = ag::grad({loss}, {w1, w2}, {.create_graph = true});
  // Differentiate once more: gradient of the squared gradient norm.
  TD gn = ml::add(ml::sum(ml::square(g[0])), ml::sum(ml::square(g[1])));
  auto hv = ag::grad({gn}, {w1});
  // Also exercise Tensor::backward on a thread.
  TD w1b = w1.detach().clone().requires_grad(true);
  ml::sum(ml::exp(ml::mul(w1b, w1b))).backward();
  return {loss.detach(), g[0].detach(), g[1].detach(), ml::add(hv[0], w1b.grad())};
}

}  // namespace

TEST(Threads, ParallelGraphsMatchSerialBitwise) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 60;
  constexpr int kTasks = kThreads * kPerThread;
  std::vector<Result> serial;
  serial.reserve(kTasks);
  for (int t = 0; t < kTasks; ++t) serial.push_back(run_task(static_cast<std::uint64_t>(t)));

  std::vector<Result> parallel(kTasks);
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([th, &parallel] {
      // Interleaved assignment, so threads work on neighbouring tasks at the same time.
      for (int t = th; t < kTasks; t += kThreads) {
        parallel[static_cast<std::size_t>(t)] = run_task(static_cast<std::uint64_t>(t));
      }
    });
  }
  for (auto& t : threads) t.join();

  for (int t = 0; t < kTasks; ++t) {
    SCOPED_TRACE(::testing::Message() << "task " << t);
    const auto& s = serial[static_cast<std::size_t>(t)];
    const auto& p = parallel[static_cast<std::size_t>(t)];
    ASSERT_TRUE(mt::bitwise_equal(s.loss, p.loss));
    ASSERT_TRUE(mt::bitwise_equal(s.grad_w1, p.grad_w1));
    ASSERT_TRUE(mt::bitwise_equal(s.grad_w2, p.grad_w2));
    ASSERT_TRUE(mt::bitwise_equal(s.hvp_w1, p.hvp_w1));
  }
}

TEST(Threads, NoGradOnOneThreadWhileOthersRecord) {
  constexpr int kThreads = 4;
  std::vector<int> recorded(kThreads, 0);
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([th, &recorded] {
      for (int i = 0; i < 200; ++i) {
        auto x = ml::ones<double>({4}).requires_grad(true);
        if (th == 0) {
          ag::NoGradGuard g;
          recorded[0] += ml::exp(x).requires_grad() ? 1 : 0;
        } else {
          recorded[static_cast<std::size_t>(th)] += ml::exp(x).requires_grad() ? 1 : 0;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(recorded[0], 0);
  for (int th = 1; th < kThreads; ++th) EXPECT_EQ(recorded[static_cast<std::size_t>(th)], 200);
}

// Storage made on one thread and freed on another, also after the thread that made
// it has ended, goes back to malloc intact; storage made afterwards holds its values.
TEST(Threads, StorageFreedOnAnotherThreadAndAfterItsThreadEnded) {
  constexpr ml::Index kLarge = 40'000;  // above the per-size-class limit of the cache
  std::vector<TD> made_elsewhere;
  std::thread maker([&] {
    for (int i = 0; i < 8; ++i) made_elsewhere.push_back(ml::full<double>({kLarge}, i));
  });
  maker.join();
  for (int i = 0; i < 8; ++i) {
    const TD& t = made_elsewhere[static_cast<std::size_t>(i)];
    ASSERT_EQ(t.data()[0], i);
    ASSERT_EQ(t.data()[kLarge - 1], i);
  }
  made_elsewhere.clear();  // freed here, after the maker's cache is gone

  std::vector<TD> made_here;
  for (int i = 0; i < 8; ++i) made_here.push_back(ml::full<double>({kLarge}, i));
  std::thread freer([moved = std::move(made_here)]() mutable {
    for (int round = 0; round < 3; ++round) {
      moved.clear();  // freed on this thread
      for (int i = 0; i < 8; ++i) moved.push_back(ml::full<double>({kLarge}, -i));
    }
  });
  freer.join();
  for (int round = 0; round < 3; ++round) {
    const TD a = ml::full<double>({kLarge}, 2.5);
    const TD b = ml::add(a, a);
    EXPECT_EQ(b.data()[kLarge - 1], 5.0);
  }
}

// A large request takes the smallest cached block of its thread that holds it with
// at most half of it to spare; the block keeps its size through reuse.
TEST(Threads, LargeRequestsReuseCachedBlocksAtMostHalfAgainTheirSize) {
  std::thread fresh([] {  // a new thread: an empty cache
    constexpr std::size_t kBlock = std::size_t{192} << 10;
    void* p = ml::detail::acquire_block(kBlock);
    ml::detail::release_block(p, kBlock);
    void* q = ml::detail::acquire_block(kBlock / 3 * 2);  // 128 KiB: fits within 1.5x
    EXPECT_EQ(q, p);
    static_cast<unsigned char*>(q)[kBlock - 1] = 7;  // the whole block is usable
    ml::detail::release_block(q, kBlock / 3 * 2);
    void* r = ml::detail::acquire_block(kBlock);  // cached under its own size
    EXPECT_EQ(r, p);
    ml::detail::release_block(r, kBlock);
    void* s = ml::detail::acquire_block(kBlock / 2);  // 96 KiB: 2x would waste half
    EXPECT_NE(s, p);
    void* t = ml::detail::acquire_block(kBlock + 64);  // larger than the block
    EXPECT_NE(t, p);
    ml::detail::release_block(s, kBlock / 2);
    ml::detail::release_block(t, kBlock + 64);
  });
  fresh.join();
}
