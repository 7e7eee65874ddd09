// Data-parallel meta-training over MPI equals the single-process run. Run under
// `mpirun -np N` (N = 1, 2, 3 in CTest): every rank computes the single-process
// reference itself, then the distributed run, and compares. With `deterministic` the
// parameters and statistics are bitwise equal; without it equal to rounding (float64,
// 1e-6 relative). Only non-fatal EXPECTs are used, so that a failing check never
// leaves a rank out of a collective the others wait in.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <metalearn/distributed.hpp>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;
namespace dist = metalearn::distributed;

namespace {

// Every value of a learner's meta-parameters, in order.
template <class L>
std::vector<typename L::value_type> parameters(const L& learner) {
  std::vector<typename L::value_type> out;
  for (const auto& [name, t] : learner.meta_parameters()) {
    out.insert(out.end(), t.data(), t.data() + t.numel());
  }
  return out;
}

template <class T>
ml::data::SinusoidTasks<T> sinusoids() {
  return ml::data::SinusoidTasks<T>({.shots = 5, .queries = 5});
}

ml::data::EpisodicSampler<float> glyph_episodes() {
  auto glyphs = std::make_shared<const ml::data::ProceduralGlyphs>(
      ml::data::ProceduralGlyphsOptions{.split = ml::data::Split::kTrain, .image_size = 16});
  return ml::data::EpisodicSampler<float>(glyphs, {.ways = 3, .shots = 2, .queries = 2});
}

// A learner with its model. `init` seeds the model's initial values.
template <class T>
struct MamlCase {
  using Learner = alg::Maml<T>;
  std::unique_ptr<ml::nn::MLP<T>> model;
  std::unique_ptr<alg::Maml<T>> learner;
  explicit MamlCase(std::uint64_t init) {
    ml::Generator gen(init);
    model = std::make_unique<ml::nn::MLP<T>>(std::vector<ml::Index>{1, 8, 8, 1}, gen);
    // Second order (first_order off), two inner steps, tasks on two threads.
    learner = std::make_unique<alg::Maml<T>>(
        *model, alg::MamlOptions<T>{
                    .inner_lr = T(0.05), .inner_steps = 2, .outer_lr = T(0.01), .threads = 2});
  }
  static auto tasks() { return sinusoids<T>(); }
};

template <class T>
struct ReptileCase {
  using Learner = alg::Reptile<T>;
  std::unique_ptr<ml::nn::MLP<T>> model;
  std::unique_ptr<alg::Reptile<T>> learner;
  explicit ReptileCase(std::uint64_t init, bool carry = false, ml::Index inner_batch = 0) {
    ml::Generator gen(init);
    model = std::make_unique<ml::nn::MLP<T>>(std::vector<ml::Index>{1, 8, 8, 1}, gen);
    learner = std::make_unique<alg::Reptile<T>>(*model,
                                                alg::ReptileOptions<T>{.carry_inner_state = carry,
                                                                       .inner_steps = 3,
                                                                       .inner_batch = inner_batch,
                                                                       .loss = alg::LossKind::kMse,
                                                                       .threads = 2,
                                                                       .seed = 4});
  }
  static auto tasks() { return sinusoids<T>(); }
};

struct ProtoNetCase {
  using Learner = alg::ProtoNet<float>;
  std::unique_ptr<alg::ProtoNet<float>> learner;
  explicit ProtoNetCase(std::uint64_t init) {
    ml::Generator gen(init);
    learner = std::make_unique<alg::ProtoNet<float>>(
        gen, alg::ProtoNetOptions<float>{
                 .lr = 2e-3, .embedding = ml::nn::ConvNet4Options{.hidden = 4, .image_size = 16}});
  }
  static auto tasks() { return glyph_episodes(); }
};

struct Trajectory {
  std::vector<double> parameters;
  std::vector<double> meta_losses;
};

template <class L>
Trajectory record(const L& learner, std::vector<double> losses) {
  Trajectory r;
  for (auto v : parameters(learner)) r.parameters.push_back(static_cast<double>(v));
  r.meta_losses = std::move(losses);
  return r;
}

// `steps` meta-steps in one process on meta-batches of `batch`.
template <class Case>
Trajectory single_process(std::int64_t steps, ml::Index batch) {
  Case c(/*init=*/11);
  ml::data::MetaBatchSampler batches(Case::tasks(), {.batch = batch, .seed = 3});
  std::vector<double> losses;
  for (std::int64_t s = 0; s < steps; ++s) {
    losses.push_back(c.learner->meta_step(batches.next()).meta_loss);
  }
  return record(*c.learner, losses);
}

// The same over every rank of `comm`; each rank's model starts from its own values
// (the trainer gives every rank rank 0's).
template <class Case>
Trajectory distributed(std::int64_t steps, ml::Index batch, bool deterministic,
                       const dist::Communicator& comm) {
  Case c(/*init=*/11 + static_cast<std::uint64_t>(comm.rank()) * 1000);
  dist::ShardedBatches<typename Case::Learner::value_type> batches(
      Case::tasks(), {.batch = batch, .seed = 3}, comm.rank(), comm.size());
  dist::DistributedTrainer trainer(*c.learner, comm, {.deterministic = deterministic});
  std::vector<double> losses;
  ml::train::FitOptions options{.steps = steps, .progress = false};
  options.on_step = [&](std::int64_t, const alg::StepStats& s) { losses.push_back(s.meta_loss); };
  const ml::train::FitResult result = trainer.fit(batches, options);
  EXPECT_EQ(result.steps, steps);
  return record(*c.learner, losses);
}

void expect_bitwise(const Trajectory& a, const Trajectory& b) {
  ASSERT_EQ(a.parameters.size(), b.parameters.size());
  std::size_t differ = 0;
  for (std::size_t i = 0; i < a.parameters.size(); ++i) {
    if (std::memcmp(&a.parameters[i], &b.parameters[i], sizeof(double)) != 0) ++differ;
  }
  EXPECT_EQ(differ, 0U) << "of " << a.parameters.size() << " parameters differ in their bits";
  EXPECT_EQ(a.meta_losses, b.meta_losses);
}

void expect_close(const Trajectory& a, const Trajectory& b, double rel) {
  ASSERT_EQ(a.parameters.size(), b.parameters.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < a.parameters.size(); ++i) {
    const double scale = std::max({std::abs(a.parameters[i]), std::abs(b.parameters[i]), 1e-3});
    worst = std::max(worst, std::abs(a.parameters[i] - b.parameters[i]) / scale);
  }
  EXPECT_LE(worst, rel);
  ASSERT_EQ(a.meta_losses.size(), b.meta_losses.size());
  for (std::size_t i = 0; i < a.meta_losses.size(); ++i) {
    EXPECT_NEAR(a.meta_losses[i], b.meta_losses[i], rel * std::abs(b.meta_losses[i]));
  }
}

}  // namespace

TEST(ShardedBatches, TheShardsOfAllRanksAreTheSingleProcessBatch) {
  const auto family = sinusoids<float>();
  ml::data::MetaBatchSampler whole(family, {.batch = 5, .seed = 9});
  for (int ranks = 1; ranks <= 6; ++ranks) {
    std::vector<std::unique_ptr<dist::ShardedBatches<float>>> shards;
    for (int r = 0; r < ranks; ++r) {
      shards.push_back(std::make_unique<dist::ShardedBatches<float>>(
          family, ml::data::MetaBatchOptions{.batch = 5, .seed = 9}, r, ranks));
      shards.back()->set_position(2);
    }
    const ml::data::TaskBatch<float> expected = whole.batch_at(2);
    std::vector<ml::data::TaskBatch<float>> got;
    std::size_t total = 0;
    for (auto& s : shards) {
      got.push_back(s->next());
      total += got.back().size();
      EXPECT_EQ(s->position(), 3U);
    }
    EXPECT_EQ(total, expected.size()) << ranks << " ranks";
    for (std::size_t j = 0; j < expected.size(); ++j) {
      const auto& mine = got[j % static_cast<std::size_t>(ranks)];
      const auto k = j / static_cast<std::size_t>(ranks);
      ASSERT_LT(k, mine.size());
      const auto& a = mine[k].support_x;
      const auto& b = expected[j].support_x;
      ASSERT_EQ(a.shape(), b.shape());
      EXPECT_EQ(std::memcmp(a.data(), b.data(), sizeof(float) * a.numel()), 0)
          << "task " << j << " on " << ranks << " ranks";
    }
  }
}

TEST(DistributedTrainer, SecondOrderMamlDeterministicIsBitwiseTheSingleProcessRun) {
  const dist::Communicator world;
  expect_bitwise(distributed<MamlCase<float>>(3, 5, true, world),
                 single_process<MamlCase<float>>(3, 5));
}

TEST(DistributedTrainer, SecondOrderMamlAllReduceEqualsToRounding) {
  const dist::Communicator world;
  expect_close(distributed<MamlCase<double>>(3, 5, false, world),
               single_process<MamlCase<double>>(3, 5), 1e-6);
}

TEST(DistributedTrainer, ReptileDeterministicIsBitwiseTheSingleProcessRun) {
  const dist::Communicator world;
  // Two tasks a batch: on three ranks the last has none.
  expect_bitwise(distributed<ReptileCase<float>>(3, 2, true, world),
                 single_process<ReptileCase<float>>(3, 2));
}

TEST(DistributedTrainer, ReptileAllReduceEqualsToRounding) {
  const dist::Communicator world;
  expect_close(distributed<ReptileCase<double>>(3, 4, false, world),
               single_process<ReptileCase<double>>(3, 4), 1e-6);
}

TEST(DistributedTrainer, ProtoNetDeterministicIsBitwiseTheSingleProcessRun) {
  const dist::Communicator world;
  expect_bitwise(distributed<ProtoNetCase>(2, 3, true, world), single_process<ProtoNetCase>(2, 3));
}

TEST(DistributedTrainer, ProtoNetAllReduceGradientEqualsToRounding) {
  // The meta-gradient rather than the parameters: a convolution's bias feeding batch
  // norm has a zero gradient, whose rounding noise Adam's first step turns into a
  // full step of either sign.
  const dist::Communicator world;
  ProtoNetCase c(11);
  ml::data::MetaBatchSampler whole(ProtoNetCase::tasks(), {.batch = 5, .seed = 3});
  const alg::MetaGradient<float> expected = c.learner->meta_gradient(whole.next());
  dist::ShardedBatches<float> shard(ProtoNetCase::tasks(), {.batch = 5, .seed = 3}, world.rank(),
                                    world.size());
  const dist::DistributedTrainer trainer(*c.learner, world);
  const alg::MetaGradient<float> got = trainer.meta_gradient(shard.next(), 5);
  EXPECT_EQ(got.tasks, 5U);
  ASSERT_EQ(got.sum.size(), expected.sum.size());
  double largest = 0.0;
  double worst = 0.0;
  auto e = expected.sum.begin();
  for (const auto& [name, g] : got.sum) {
    const auto& [ename, et] = *e;
    EXPECT_EQ(name, ename);
    for (ml::Index i = 0; i < g.numel(); ++i) {
      largest = std::max(largest, std::abs(static_cast<double>(et.data()[i])));
      worst = std::max(worst, std::abs(static_cast<double>(g.data()[i] - et.data()[i])));
    }
    ++e;
  }
  EXPECT_LE(worst, 1e-6 * largest * 10) << "float32 sums in another order";
  EXPECT_NEAR(got.stats.meta_loss, expected.stats.meta_loss, 1e-6 * expected.stats.meta_loss);
  EXPECT_NEAR(got.stats.post_accuracy.value(), expected.stats.post_accuracy.value(), 1e-6);
}

TEST(DistributedTrainer, ResumesOnAnotherNumberOfRanks) {
  const dist::Communicator world;
  // Rank 0 alone reads and writes the run directory; the others never touch it.
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("metalearn_distributed_resume_" + std::to_string(getpid()));
  if (world.rank() == 0) std::filesystem::remove_all(dir);
  // First leg: steps 1-2 on the first max(1, R - 1) ranks.
  const int first = std::max(1, world.size() - 1);
  MPI_Comm part = MPI_COMM_NULL;
  MPI_Comm_split(world.handle(), world.rank() < first ? 0 : MPI_UNDEFINED, world.rank(), &part);
  if (part != MPI_COMM_NULL) {
    const dist::Communicator comm(part);
    MamlCase<float> c(11);
    dist::ShardedBatches<float> batches(MamlCase<float>::tasks(), {.batch = 5, .seed = 3},
                                        comm.rank(), comm.size());
    dist::DistributedTrainer trainer(*c.learner, comm, {.deterministic = true});
    const auto r = trainer.fit(batches, {.steps = 2, .run_dir = dir, .progress = false});
    EXPECT_EQ(r.steps, 2);
    MPI_Comm_free(&part);
  }
  // Second leg: steps 3-4 on all R ranks, from learners built with other values.
  MamlCase<float> c(77 + static_cast<std::uint64_t>(world.rank()));
  dist::ShardedBatches<float> batches(MamlCase<float>::tasks(), {.batch = 5, .seed = 3},
                                      world.rank(), world.size());
  dist::DistributedTrainer trainer(*c.learner, world, {.deterministic = true});
  const auto r = trainer.fit(batches, {.steps = 4, .run_dir = dir, .progress = false});
  EXPECT_EQ(r.start_step, 2);
  EXPECT_EQ(r.steps, 4);
  const Trajectory expected = single_process<MamlCase<float>>(4, 5);
  expect_bitwise(record(*c.learner, expected.meta_losses), expected);
  if (world.rank() == 0) {
    EXPECT_TRUE(std::filesystem::exists(dir / "checkpoint.safetensors"));
    std::filesystem::remove_all(dir);
  }
}

TEST(DistributedTrainer, ARankPastTheTimeLimitStopsEveryRankAfterTheSameStep) {
  const dist::Communicator world;
  MamlCase<float> c(11);
  dist::ShardedBatches<float> batches(MamlCase<float>::tasks(), {.batch = 5, .seed = 3},
                                      world.rank(), world.size());
  dist::DistributedTrainer trainer(*c.learner, world);
  // Only the last rank has a limit, one it passes before its first step's collective.
  const bool limited = world.rank() == world.size() - 1;
  const auto r =
      trainer.fit(batches, {.steps = 10, .time_limit = limited ? 1e-12 : 0.0, .progress = false});
  EXPECT_EQ(r.steps, 1);
  EXPECT_TRUE(r.out_of_time);
  EXPECT_EQ(c.learner->steps_taken(), 1);
}

TEST(DistributedTrainer, RankZeroEvaluates) {
  const dist::Communicator world;
  MamlCase<float> c(11);
  dist::ShardedBatches<float> batches(MamlCase<float>::tasks(), {.batch = 5, .seed = 3},
                                      world.rank(), world.size());
  dist::DistributedTrainer trainer(*c.learner, world);
  const ml::data::AnyTaskSampler<float> eval(MamlCase<float>::tasks());
  const auto r = trainer.fit(batches, {.steps = 1, .eval_episodes = 3, .progress = false},
                             world.rank() == 0 ? &eval : nullptr);
  EXPECT_EQ(r.last_eval.has_value(), world.rank() == 0);
  if (r.last_eval) {
    EXPECT_EQ(r.last_eval->episodes, 3U);
    EXPECT_EQ(r.last_eval->mean, c.learner->evaluate(eval, 3).mean);
  }
}

TEST(DistributedTrainer, RefusesWhatCannotBeSharded) {
  const dist::Communicator world;
  // Every rank throws alike, so without abort_on_error the error reaches the caller.
  ReptileCase<float> carried(11, /*carry=*/true);
  EXPECT_THROW(dist::DistributedTrainer(*carried.learner, world, {.abort_on_error = false}),
               ml::ValueError);
  ReptileCase<float> ok(11);
  dist::DistributedTrainer trainer(*ok.learner, world, {.abort_on_error = false});
  // A shard that is not this rank's share of the meta-batch.
  ml::data::MetaBatchSampler batches(ReptileCase<float>::tasks(), {.batch = 7, .seed = 3});
  const ml::data::TaskBatch<float> all = batches.next();
  if (world.size() > 1) {
    EXPECT_THROW(static_cast<void>(trainer.meta_gradient(all, all.size())), ml::ValueError);
  } else {
    EXPECT_EQ(trainer.meta_gradient(all, all.size()).tasks, all.size());
  }
  // Inner mini-batches of 2 from support sets of 5 are drawn by the task's position in
  // the batch one process computes; mini-batches as large as the support set are not.
  dist::ShardedBatches<float> shards(ReptileCase<float>::tasks(), {.batch = 7, .seed = 3},
                                     world.rank(), world.size());
  ReptileCase<float> mini(11, false, /*inner_batch=*/2);
  dist::DistributedTrainer mini_trainer(*mini.learner, world, {.abort_on_error = false});
  EXPECT_THROW(static_cast<void>(mini_trainer.step(shards)), ml::ValueError);
  ReptileCase<float> whole(11, false, /*inner_batch=*/5);
  dist::DistributedTrainer whole_trainer(*whole.learner, world, {.abort_on_error = false});
  EXPECT_EQ(whole_trainer.step(shards).tasks, 7U);
}

int main(int argc, char** argv) {
  dist::Environment mpi(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  const dist::Communicator world;
  const int failed = RUN_ALL_TESTS();
  // The job fails when any rank failed.
  int any = failed != 0 ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_MAX, world.handle());
  return any;
}
