#pragma once
/// @file
/// Checkpoints in the safetensors format: an 8-byte little-endian header length, a
/// JSON header mapping each tensor name to its dtype, shape and byte range, then
/// the raw little-endian data. Files are written atomically (a temporary file in
/// the same directory, flushed, then renamed over the target), so a crash never
/// leaves a truncated checkpoint behind. Loading validates every field and throws
/// IoError naming the file.

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/core/export.hpp"
#include "metalearn/nn/param_dict.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::io {

/// Element types a checkpoint may hold. Loading converts to the requested T.
enum class DType { kF32, kF64 };

/// One tensor of a checkpoint, as stored.
struct StoredTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<Index> shape;
  std::vector<double> values;  ///< converted for inspection; exact for F32 and F64
};

/// Free-form string metadata stored under "__metadata__".
using Metadata = std::map<std::string, std::string>;

/// A whole safetensors file as stored: its tensors in file order and its metadata.
struct StoredFile {
  std::vector<StoredTensor> tensors;
  Metadata metadata;
};

/// A safetensors file loaded as T: its tensors in file order and its metadata.
template <class T>
struct LoadedFile {
  nn::ParamDict<T> tensors;
  Metadata metadata;
};

namespace detail {
struct RawTensor {
  std::string name;
  DType dtype;
  std::vector<Index> shape;
  const void* data;
  std::size_t bytes;
};
/// Writes the file atomically. Implemented in src/io/safetensors.cpp.
METALEARN_API void write_safetensors(const std::filesystem::path& path,
                                     const std::vector<RawTensor>& tensors,
                                     const Metadata& metadata);
/// Reads and validates a whole file. Implemented in src/io/safetensors.cpp.
METALEARN_API StoredFile read_safetensors(const std::filesystem::path& path);
/// Reads and validates the header only. Implemented in src/io/safetensors.cpp.
METALEARN_API Metadata read_safetensors_metadata(const std::filesystem::path& path);
}  // namespace detail

/// Saves every tensor of `tensors` (in order) with its name.
template <class T>
void save_safetensors(const std::filesystem::path& path, const nn::ParamDict<T>& tensors,
                      const Metadata& metadata = {}) {
  std::vector<detail::RawTensor> raw;
  for (const auto& [name, t] : tensors) {
    raw.push_back({std::string(name), std::is_same_v<T, float> ? DType::kF32 : DType::kF64,
                   t.shape().to_vector(), t.data(),
                   static_cast<std::size_t>(t.numel()) * sizeof(T)});
  }
  detail::write_safetensors(path, raw, metadata);
}

/// Loads every tensor of a safetensors file, converted to T, in file order, with the
/// file's metadata.
template <class T>
LoadedFile<T> load_safetensors_file(const std::filesystem::path& path) {
  StoredFile stored = detail::read_safetensors(path);
  LoadedFile<T> out{.tensors = {}, .metadata = std::move(stored.metadata)};
  for (auto& s : stored.tensors) {
    Tensor<T> t = Tensor<T>::empty(Shape(s.shape));
    for (Index i = 0; i < t.numel(); ++i) {
      const double v = s.values[static_cast<std::size_t>(i)];
      t.data()[i] = static_cast<T>(v);
      METALEARN_CHECK(!std::isfinite(v) || std::isfinite(t.data()[i]), IoError,
                      "load_safetensors: ", path.string(), ": tensor '", s.name, "' holds ", v,
                      " at element ", i,
                      ", which does not fit the requested type; load it as "
                      "double");
    }
    out.tensors.insert(s.name, t);
  }
  return out;
}

/// Loads every tensor of a safetensors file, converted to T, in file order.
template <class T>
nn::ParamDict<T> load_safetensors(const std::filesystem::path& path) {
  return load_safetensors_file<T>(path).tensors;
}

/// Reads a checkpoint without converting (names, dtypes, shapes, values, metadata).
inline StoredFile inspect_safetensors(const std::filesystem::path& path) {
  return detail::read_safetensors(path);
}

/// The metadata of a safetensors file, from its header alone: the tensor data is neither
/// read nor checked, so this costs the same for a checkpoint of any size. Throws IoError
/// for a file that is missing, too short, or whose header is not valid (the messages of
/// load_safetensors).
inline Metadata read_safetensors_metadata(const std::filesystem::path& path) {
  return detail::read_safetensors_metadata(path);
}

}  // namespace metalearn::io
