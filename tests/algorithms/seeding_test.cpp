// One seeding scheme: evaluation episode i of a learner is task i of the test stream
// of its seed, the task a MetaBatchSampler of batch 1 over the test split draws at
// position i; and task j of meta-batch p is task p * batch + j of its stream.
#include <gtest/gtest.h>

#include <cstdint>
#include <metalearn/metalearn.hpp>

namespace {

namespace ml = metalearn;
namespace md = metalearn::data;

void expect_same_task(const md::Task<double>& a, const md::Task<double>& b) {
  ASSERT_EQ(a.support_x.shape(), b.support_x.shape());
  for (ml::Index i = 0; i < a.support_x.numel(); ++i) {
    EXPECT_EQ(a.support_x.data()[i], b.support_x.data()[i]);
  }
  for (ml::Index i = 0; i < a.query_y.numel(); ++i) {
    EXPECT_EQ(a.query_y.data()[i], b.query_y.data()[i]);
  }
  EXPECT_EQ(a.query_labels, b.query_labels);
}

TEST(Seeding, EvaluationEpisodesAreTheTestStreamsTasks) {
  md::SinusoidTasks<double> family({.shots = 5, .queries = 5});
  md::MetaBatchSampler<double> test_stream(family,
                                           {.batch = 1, .seed = 17, .split = md::Split::kTest});
  for (std::size_t i : {0U, 1U, 9U}) {
    ml::Generator gen = ml::algorithms::episode_generator(17, i);
    expect_same_task(family.sample(gen), test_stream.batch_at(i)[0]);
  }
  // Another split or seed is another stream.
  ml::Generator other = md::task_generator(17, md::Split::kTrain, 0);
  ml::Generator eval = ml::algorithms::episode_generator(17, 0);
  EXPECT_NE(family.sample(other).support_x.data()[0], family.sample(eval).support_x.data()[0]);
}

TEST(Seeding, MetaBatchTasksAreConsecutiveTasksOfTheStream) {
  md::SinusoidTasks<double> family({.shots = 5, .queries = 5});
  md::MetaBatchSampler<double> batches(family, {.batch = 4, .seed = 3, .threads = 2});
  const md::TaskBatch<double> third = batches.batch_at(2);
  for (std::size_t j = 0; j < third.size(); ++j) {
    ml::Generator gen = md::task_generator(3, md::Split::kTrain, 2 * 4 + j);
    expect_same_task(third[j], family.sample(gen));
  }
}

}  // namespace
