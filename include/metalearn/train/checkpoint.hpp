#pragma once
/// @file
/// A meta-learner's whole state (algorithms::LearnerState) in one checkpoint file, for
/// any algorithm of the contract: save_checkpoint(path, learner) and
/// load_checkpoint(path, learner) continue a run bit for bit.
///
/// Layout (an io::TrainingCheckpoint, so the file also reads with io::load_checkpoint):
/// meta-parameters and buffers under their own names, the outer optimizer as the
/// checkpoint's optimizer ("optimizer.<key>", metadata "optimizer.step"/"optimizer.lr"),
/// a carried inner-optimizer state under "inner_optimizer.<key>" with metadata
/// "inner_optimizer.step"/"inner_optimizer.lr", and the meta-step count as metadata
/// "learner.steps". A file written before "learner.steps" existed (meta-parameters and
/// an outer optimizer only) loads with the optimizer's step count as the step count.
// SPDX-License-Identifier: MIT

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "metalearn/algorithms/meta_learner.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/io/checkpoint.hpp"

namespace metalearn::train {

namespace detail {

inline constexpr std::string_view kInnerPrefix = "inner_optimizer.";
inline constexpr std::string_view kStepsKey = "learner.steps";

inline std::string exact(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", v);  // round-trips a double exactly
  return text;
}

/// Parses a whole string as a number; IoError naming the file and key otherwise.
template <class N>
N parse(const std::filesystem::path& path, const std::string& key, const std::string& text) {
  bool ok = false;
  N value{};
  try {
    std::size_t used = 0;
    if constexpr (std::is_same_v<N, double>) {
      value = std::stod(text, &used);
    } else {
      value = static_cast<N>(std::stoll(text, &used));
    }
    ok = used == text.size();
  } catch (const std::logic_error&) {  // std::invalid_argument, std::out_of_range
    ok = false;
  }
  METALEARN_CHECK(ok, IoError, "train::load_checkpoint(", path.string(), "): metadata '", key,
                  "' = '", text, "' is not a number");
  return value;
}

}  // namespace detail

/// The checkpoint of a learner state with `metadata` added (whose keys must not use
/// the reserved "optimizer.", "inner_optimizer." or "learner." prefixes).
template <class T>
io::TrainingCheckpoint<T> to_checkpoint(const algorithms::LearnerState<T>& state,
                                        io::Metadata metadata = {}) {
  for (const auto& [key, value] : metadata) {
    METALEARN_CHECK(key.rfind(detail::kInnerPrefix, 0) != 0 && key.rfind("learner.", 0) != 0,
                    ValueError, "train::to_checkpoint: metadata key '", key,
                    "' uses a reserved prefix ('inner_optimizer.' or 'learner.')");
  }
  io::TrainingCheckpoint<T> out;
  for (const auto& [name, t] : state.parameters) out.parameters.insert(name, t);
  for (const auto& [name, t] : state.buffers) {
    METALEARN_CHECK(state.parameters.find(name) == nullptr, ValueError, "train::to_checkpoint: '",
                    name, "' is both a parameter and a buffer");
    out.parameters.insert(name, t);
  }
  if (state.inner_optimizer) {
    for (const auto& [key, t] : state.inner_optimizer->buffers) {
      out.parameters.insert(std::string(detail::kInnerPrefix) + std::string(key), t);
    }
    metadata[std::string(detail::kInnerPrefix) + "step"] =
        std::to_string(state.inner_optimizer->step);
    metadata[std::string(detail::kInnerPrefix) + "lr"] = detail::exact(state.inner_optimizer->lr);
  }
  metadata[std::string(detail::kStepsKey)] = std::to_string(state.steps);
  out.optimizer = state.optimizer;
  out.metadata = std::move(metadata);
  return out;
}

/// A learner state read from a checkpoint, and the checkpoint's metadata without the
/// entries of the state.
template <class T>
struct RestoredState {
  algorithms::LearnerState<T> state;
  io::Metadata metadata;
};

/// The learner state a checkpoint holds, with the rest of its metadata.
/// `buffer_names` says which tensors are buffers (those of the learner's state()).
/// Throws IoError naming `path` when the inner-optimizer metadata or the step count
/// is malformed.
template <class T>
RestoredState<T> to_state(const io::TrainingCheckpoint<T>& checkpoint,
                          const nn::ParamDict<T>& buffer_names,
                          const std::filesystem::path& path = {}) {
  algorithms::LearnerState<T> out;
  io::Metadata rest = checkpoint.metadata;
  const std::string inner_step = std::string(detail::kInnerPrefix) + "step";
  const std::string inner_lr = std::string(detail::kInnerPrefix) + "lr";
  const auto step_it = rest.find(inner_step);
  const auto lr_it = rest.find(inner_lr);
  METALEARN_CHECK((step_it == rest.end()) == (lr_it == rest.end()), IoError,
                  "train::load_checkpoint(", path.string(), "): '", inner_step, "' and '", inner_lr,
                  "' must both be present or both absent");
  if (step_it != rest.end()) {
    optim::OptimizerState<T> inner;
    inner.step = detail::parse<std::int64_t>(path, inner_step, step_it->second);
    inner.lr = detail::parse<double>(path, inner_lr, lr_it->second);
    METALEARN_CHECK(inner.step >= 0 && inner.lr >= 0.0 && std::isfinite(inner.lr), IoError,
                    "train::load_checkpoint(", path.string(), "): inner optimizer step ",
                    inner.step, " and learning rate ", inner.lr,
                    " must be non-negative and finite");
    out.inner_optimizer = std::move(inner);
    rest.erase(inner_step);
    rest.erase(inner_lr);
  }
  for (const auto& [name, t] : checkpoint.parameters) {
    const std::string_view n(name);
    if (n.substr(0, detail::kInnerPrefix.size()) == detail::kInnerPrefix) {
      METALEARN_CHECK(out.inner_optimizer.has_value(), IoError, "train::load_checkpoint(",
                      path.string(), "): tensor '", name, "' without '", inner_step, "' metadata");
      out.inner_optimizer->buffers.insert(std::string(n.substr(detail::kInnerPrefix.size())), t);
    } else if (buffer_names.find(name) != nullptr) {
      out.buffers.insert(name, t);
    } else {
      out.parameters.insert(name, t);
    }
  }
  out.optimizer = checkpoint.optimizer;
  const auto steps = rest.find(std::string(detail::kStepsKey));
  if (steps != rest.end()) {
    out.steps = detail::parse<std::int64_t>(path, std::string(detail::kStepsKey), steps->second);
    rest.erase(steps);
  } else {
    // A checkpoint of meta-parameters and an outer optimizer only: the optimizer
    // has taken one step per meta-step.
    METALEARN_CHECK(checkpoint.optimizer.has_value(), IoError, "train::load_checkpoint(",
                    path.string(), "): no '", detail::kStepsKey,
                    "' metadata and no optimizer state to take the step count from");
    out.steps = checkpoint.optimizer->step;
  }
  METALEARN_CHECK(out.steps >= 0, IoError, "train::load_checkpoint(", path.string(),
                  "): negative step count ", out.steps);
  return {.state = std::move(out), .metadata = std::move(rest)};
}

/// Saves `learner`'s whole state and `metadata` to `path` atomically. Throws
/// NonFiniteError naming the tensor, and writes nothing, when the state holds NaN or
/// infinite values (unless options.allow_non_finite), so a diverged run never
/// replaces its last good checkpoint.
template <class L>
  requires algorithms::LearnerCore<L>
void save_checkpoint(const std::filesystem::path& path, const L& learner,
                     io::Metadata metadata = {}, const io::SaveOptions& options = {}) {
  io::save_checkpoint(path, to_checkpoint(learner.state(), std::move(metadata)), options);
}

/// Loads a checkpoint written by save_checkpoint() into `learner` (all or nothing)
/// and returns the metadata saved with it. Throws IoError naming the file when it is
/// damaged, and ValueError / ShapeError (from load_state) naming the entry when it
/// does not fit the learner.
template <class L>
  requires algorithms::LearnerCore<L>
io::Metadata load_checkpoint(const std::filesystem::path& path, L& learner) {
  using T = typename L::value_type;
  RestoredState<T> restored = to_state(io::load_checkpoint<T>(path), learner.state().buffers, path);
  learner.load_state(restored.state);
  return std::move(restored.metadata);
}

}  // namespace metalearn::train
