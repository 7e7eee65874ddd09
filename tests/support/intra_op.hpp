#pragma once
// Bit-equality of an op's results with and without an intra-op pool.

#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "metalearn/core/thread_pool.hpp"
#include "metalearn/tensor.hpp"

namespace metalearn::testing {

/// The values of every tensor handed to it, in order.
template <class T>
struct ValueRecord {
  std::vector<T> values;
  void operator()(const Tensor<T>& t) {
    const auto v = t.detach().to_vector();
    values.insert(values.end(), v.begin(), v.end());
  }
};

/// Runs compute(record) on the calling thread alone, then under an IntraOpScope with
/// a pool of `threads` threads, and expects every recorded value to have the same
/// bits both times.
template <class T, class Compute>
void expect_intra_op_pool_bits(Compute&& compute, std::size_t threads = 3) {
  auto run = [&](ThreadPool* pool) {
    const IntraOpScope scope(pool);
    ValueRecord<T> record;
    compute(record);
    return record.values;
  };
  ThreadPool pool(threads);
  const std::vector<T> serial = run(nullptr);
  const std::vector<T> parallel = run(&pool);
  ASSERT_EQ(serial.size(), parallel.size());
  for (std::size_t i = 0; i < serial.size(); ++i)
    ASSERT_EQ(serial[i], parallel[i]) << "value " << i;
}

}  // namespace metalearn::testing
