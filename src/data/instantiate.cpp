// Explicit instantiations of the data-layer templates for float and double.

#include "metalearn/data.hpp"

namespace metalearn::data {

template class AnyTaskSampler<float>;
template class AnyTaskSampler<double>;
template class MetaBatchSampler<float>;
template class MetaBatchSampler<double>;
template class SinusoidTasks<float>;
template class SinusoidTasks<double>;
template class GaussianProcessTasks<float>;
template class GaussianProcessTasks<double>;
template class ImageCompletionTasks<float>;
template class ImageCompletionTasks<double>;
template class EpisodicSampler<float>;
template class EpisodicSampler<double>;

static_assert(TaskSampler<SinusoidTasks<float>>);
static_assert(TaskSampler<GaussianProcessTasks<double>>);
static_assert(TaskSampler<EpisodicSampler<float>>);
static_assert(TaskSampler<ImageCompletionTasks<float>>);
static_assert(TaskSampler<AnyTaskSampler<float>>);

}  // namespace metalearn::data
