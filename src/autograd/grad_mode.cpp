#include "metalearn/autograd/grad_mode.hpp"

namespace metalearn::autograd {
namespace {
thread_local bool t_grad_enabled = true;
thread_local bool t_anomaly_enabled = false;
}  // namespace

bool is_grad_enabled() noexcept { return t_grad_enabled; }
void set_grad_enabled(bool enabled) noexcept { t_grad_enabled = enabled; }
bool is_anomaly_enabled() noexcept { return t_anomaly_enabled; }
void set_anomaly_enabled(bool enabled) noexcept { t_anomaly_enabled = enabled; }

}  // namespace metalearn::autograd
