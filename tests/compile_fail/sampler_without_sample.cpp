// A meta-batch sampler over a type that is no task sampler names the member it needs.
// expect: MetaBatchSampler: the sampler must provide
#include <metalearn/data/meta_batch_sampler.hpp>

struct NotASampler {
  int draw() const { return 0; }
};

int main() {
  metalearn::data::MetaBatchSampler<float> batches(NotASampler{}, {.batch = 2});
}
