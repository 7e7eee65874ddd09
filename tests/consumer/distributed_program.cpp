// A consumer's data-parallel program: second-order MAML on sinusoids over the ranks of
// MPI_COMM_WORLD (deterministic sums), three meta-steps. Every rank also trains the same
// learner in one process and checks that the parameters are the same bits; the exit
// status says whether they are (the job fails if any rank's check fails).
#include <cstdio>
#include <metalearn/distributed.hpp>
#include <metalearn/metalearn.hpp>
#include <vector>

namespace ml = metalearn;
namespace dist = metalearn::distributed;

namespace {

std::vector<float> parameters(const ml::algorithms::Maml<float>& learner) {
  std::vector<float> out;
  for (const auto& [name, t] : learner.meta_parameters()) {
    out.insert(out.end(), t.data(), t.data() + t.numel());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  dist::Environment mpi(argc, argv);
  const dist::Communicator world;
  const ml::data::SinusoidTasks<float> family({.shots = 5, .queries = 5});
  const ml::data::MetaBatchOptions batch{.batch = 5, .seed = 7};
  constexpr int kSteps = 3;

  ml::Generator gen(1);
  ml::nn::MLP<float> model({1, 16, 16, 1}, gen);
  ml::algorithms::Maml<float> maml(model, ml::algorithms::MamlOptions<float>{});
  dist::ShardedBatches<float> shards(family, batch, world.rank(), world.size());
  dist::DistributedTrainer trainer(maml, world, {.deterministic = true});
  double loss = 0.0;
  for (int i = 0; i < kSteps; ++i) loss = trainer.step(shards).meta_loss;

  ml::Generator alone_gen(1);
  ml::nn::MLP<float> alone_model({1, 16, 16, 1}, alone_gen);
  ml::algorithms::Maml<float> alone(alone_model, ml::algorithms::MamlOptions<float>{});
  ml::data::MetaBatchSampler<float> batches(family, batch);
  double alone_loss = 0.0;
  for (int i = 0; i < kSteps; ++i) alone_loss = alone.meta_step(batches.next()).meta_loss;

  const bool equal = parameters(maml) == parameters(alone) && loss == alone_loss;
  std::printf("rank %d of %d: meta-loss %.9g after %d steps; parameters %s the single process's\n",
              world.rank(), world.size(), loss, kSteps, equal ? "equal" : "DIFFER FROM");
  return equal ? 0 : 1;
}
