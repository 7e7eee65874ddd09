#include "metalearn/nn/forward_context.hpp"

namespace metalearn::nn {
namespace {
thread_local ForwardContext t_context{};
}  // namespace

const ForwardContext& forward_context() noexcept {
  return t_context;
}

ForwardScope::ForwardScope(const ForwardContext& context) noexcept : previous_(t_context) {
  t_context = context;
}

ForwardScope::~ForwardScope() {
  t_context = previous_;
}

}  // namespace metalearn::nn
