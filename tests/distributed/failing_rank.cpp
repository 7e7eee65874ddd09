// A rank that throws mid-run ends the whole job with its message instead of leaving
// the others waiting in the step's collective. Run as `mpirun -np 2`: rank 1 throws
// after meta-step 2; CTest passes when the output names rank 1 and the message (the
// job itself fails, by MPI_Abort).
#include <cstdint>
#include <cstdio>
#include <metalearn/distributed.hpp>
#include <metalearn/metalearn.hpp>
#include <vector>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;
namespace dist = metalearn::distributed;

int main(int argc, char** argv) {
  dist::Environment mpi(argc, argv);
  const dist::Communicator world;
  ml::Generator gen(1);
  ml::nn::MLP<float> model({1, 8, 1}, gen);
  alg::Maml<float> maml(model, alg::MamlOptions<float>{.inner_steps = 1});
  dist::ShardedBatches<float> batches(ml::data::SinusoidTasks<float>({.shots = 4, .queries = 4}),
                                      {.batch = 4, .seed = 1}, world.rank(), world.size());
  dist::DistributedTrainer trainer(maml, world);
  ml::train::FitOptions options{.steps = 50, .progress = false};
  options.on_step = [&](std::int64_t step, const alg::StepStats&) {
    if (world.rank() == world.size() - 1 && step == 2) {
      throw ml::ValueError("on_step: failing on purpose after meta-step 2");
    }
  };
  trainer.fit(batches, options);
  // Not reached: the job ends at step 2.
  std::printf("finished all 50 steps: the failing rank did not stop the job\n");
  return 0;
}
