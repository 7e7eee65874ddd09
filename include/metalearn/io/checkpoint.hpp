#pragma once
/// @file
/// Training checkpoints: parameters, the optimizer's state and free-form metadata in
/// one safetensors file, so a stopped run continues exactly where it was (the
/// optimizer's moments, step count and learning rate included). Written atomically
/// like every safetensors file.
///
/// Layout: parameters under their own names (the file still loads with
/// load_safetensors into Module::load_parameters in nn::LoadMode::kNonStrict, or
/// strictly from load_checkpoint(...).parameters); optimizer buffers under
/// "optimizer.<buffer key>"; the optimizer's step count and learning rate in the
/// metadata as "optimizer.step" and "optimizer.lr". A file without these keys (plain
/// parameters) loads with no optimizer state.
// SPDX-License-Identifier: MIT

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "metalearn/core/error.hpp"
#include "metalearn/io/safetensors.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/nn/param_dict.hpp"
#include "metalearn/optim/optimizer.hpp"

namespace metalearn::io {

/// What a training run needs to continue: its parameters, its optimizer's state
/// (absent in a parameters-only file) and metadata (step, data source, ...).
template <class T = float>
struct TrainingCheckpoint {
  nn::ParamDict<T> parameters;
  std::optional<optim::OptimizerState<T>> optimizer;
  Metadata metadata;
};

namespace detail {
inline constexpr std::string_view kOptimizerPrefix = "optimizer.";
}  // namespace detail

/// Options of save_checkpoint().
struct SaveOptions {
  /// Write tensors holding NaN or infinite values (refused by default, so a
  /// diverged run never replaces its last good checkpoint).
  bool allow_non_finite = false;
};

namespace detail {
/// A double as text that reads back exactly (17 significant digits).
inline std::string exact_decimal(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

/// NonFiniteError naming the file and the first NaN or infinite element of `t`.
template <class T>
void check_finite_tensor(const std::filesystem::path& path, std::string_view name,
                         const Tensor<T>& t) {
  const T* p = t.data();
  for (Index i = 0; i < t.numel(); ++i) {
    METALEARN_CHECK(std::isfinite(p[i]), NonFiniteError, "save_checkpoint(", path.string(),
                    "): tensor '", name, "' holds ", p[i], " at element ", i, " (shape ", t.shape(),
                    "); the file was not written, so the last checkpoint is kept. Pass ",
                    "SaveOptions{.allow_non_finite = true} to save it anyway");
  }
}
}  // namespace detail

/// Saves a training checkpoint atomically. Throws ValueError when a parameter
/// name or a metadata key uses the reserved "optimizer." prefix, and
/// NonFiniteError naming the tensor when a parameter, an optimizer buffer or the
/// learning rate is NaN or infinite (unless options.allow_non_finite); nothing is
/// written then.
template <class T>
void save_checkpoint(const std::filesystem::path& path, const TrainingCheckpoint<T>& checkpoint,
                     const SaveOptions& options = {}) {
  const std::string_view prefix = detail::kOptimizerPrefix;
  nn::ParamDict<T> tensors;
  for (const auto& [name, t] : checkpoint.parameters) {
    METALEARN_CHECK(std::string_view(name).substr(0, prefix.size()) != prefix, ValueError,
                    "save_checkpoint(", path.string(), "): parameter name '", name,
                    "' uses the reserved prefix '", prefix, "'");
    tensors.insert(std::string(name), t);
  }
  Metadata metadata;
  for (const auto& [key, value] : checkpoint.metadata) {
    METALEARN_CHECK(std::string_view(key).substr(0, prefix.size()) != prefix, ValueError,
                    "save_checkpoint(", path.string(), "): metadata key '", key,
                    "' uses the reserved prefix '", prefix, "'");
    metadata.emplace(key, value);
  }
  if (checkpoint.optimizer) {
    const optim::OptimizerState<T>& s = *checkpoint.optimizer;
    METALEARN_CHECK(s.step >= 0 && s.lr >= 0.0 && std::isfinite(s.lr), ValueError,
                    "save_checkpoint(", path.string(), "): optimizer step ", s.step,
                    " and learning rate ", s.lr, " must be non-negative and finite");
    for (const auto& [key, t] : s.buffers) tensors.insert(std::string(prefix).append(key), t);
    metadata.emplace(std::string(prefix) + "step", std::to_string(s.step));
    metadata.emplace(std::string(prefix) + "lr", detail::exact_decimal(s.lr));
  }
  if (!options.allow_non_finite) {
    for (const auto& [name, t] : tensors) detail::check_finite_tensor(path, name, t);
  }
  save_safetensors(path, tensors, metadata);
}

/// Loads a checkpoint written by save_checkpoint (or a plain parameters file, which
/// gives no optimizer state). Throws IoError naming the file when it is damaged or
/// its optimizer metadata is malformed.
template <class T>
TrainingCheckpoint<T> load_checkpoint(const std::filesystem::path& path) {
  const std::string prefix(detail::kOptimizerPrefix);
  LoadedFile<T> file = load_safetensors_file<T>(path);
  const nn::ParamDict<T>& tensors = file.tensors;
  Metadata& metadata = file.metadata;
  TrainingCheckpoint<T> out;
  const auto step = metadata.find(prefix + "step");
  const auto lr = metadata.find(prefix + "lr");
  METALEARN_CHECK((step == metadata.end()) == (lr == metadata.end()), IoError, "load_checkpoint(",
                  path.string(), "): '", prefix, "step' and '", prefix,
                  "lr' must both be present or both absent");
  if (step != metadata.end()) {
    optim::OptimizerState<T> s;
    bool parsed = false;
    try {
      std::size_t used_step = 0, used_lr = 0;
      s.step = std::stoll(step->second, &used_step);
      s.lr = std::stod(lr->second, &used_lr);
      parsed = used_step == step->second.size() && used_lr == lr->second.size();
    } catch (const std::logic_error&) {  // std::invalid_argument, std::out_of_range
      parsed = false;
    }
    METALEARN_CHECK(parsed && s.step >= 0 && s.lr >= 0.0 && std::isfinite(s.lr), IoError,
                    "load_checkpoint(", path.string(), "): malformed optimizer metadata step='",
                    step->second, "' lr='", lr->second,
                    "' (expected a step >= 0 and a finite learning rate >= 0)");
    out.optimizer = std::move(s);
    metadata.erase(step);
    metadata.erase(lr);
  }
  for (const auto& [name, t] : tensors) {
    const std::string_view n(name);
    if (n.substr(0, prefix.size()) == prefix) {
      METALEARN_CHECK(out.optimizer.has_value(), IoError, "load_checkpoint(", path.string(),
                      "): optimizer buffer '", name, "' without '", prefix, "step' metadata");
      out.optimizer->buffers.insert(std::string(n.substr(prefix.size())), t);
    } else {
      out.parameters.insert(std::string(name), t);
    }
  }
  out.metadata = std::move(metadata);
  return out;
}

/// Saves a module's whole state (parameters and buffers, under their dotted names)
/// to a safetensors file, atomically. Throws NonFiniteError naming the tensor, and
/// writes nothing, when one holds NaN or infinite values (unless
/// options.allow_non_finite).
///
/// @code
/// io::save(model, "model.safetensors");
/// io::load(model, "model.safetensors");
/// @endcode
template <class T>
void save(const nn::Module<T>& module, const std::filesystem::path& path,
          const SaveOptions& options = {}) {
  const nn::ParamDict<T> state = module.state_dict();
  if (!options.allow_non_finite) {
    for (const auto& [name, t] : state) detail::check_finite_tensor(path, name, t);
  }
  save_safetensors(path, state);
}

/// Loads a file written by save() (or any safetensors file of the module's names,
/// mapped by `key_map` when given) into `module`, all or nothing (see
/// Module::load_state_dict). Throws IoError naming the file when it is damaged.
template <class T>
void load(nn::Module<T>& module, const std::filesystem::path& path,
          nn::LoadMode mode = nn::LoadMode::kStrict,
          const typename nn::Module<T>::KeyMap& key_map = {}) {
  module.load_state_dict(load_safetensors<T>(path), mode, key_map);
}

}  // namespace metalearn::io
