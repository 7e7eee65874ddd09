// train::fit on a type that is no meta-learner names the contract it must satisfy.
// expect: train::fit: the learner must satisfy algorithms::MetaLearner
#include <metalearn/data/meta_batch_sampler.hpp>
#include <metalearn/data/sinusoid.hpp>
#include <metalearn/train/fit.hpp>

struct NotALearner {
  using value_type = float;
  using Adapted = int;
};

int main() {
  NotALearner learner;
  metalearn::data::MetaBatchSampler<float> batches(metalearn::data::SinusoidTasks<float>({}),
                                                   {.batch = 2});
  (void)metalearn::train::fit(learner, batches, {.steps = 1});
}
