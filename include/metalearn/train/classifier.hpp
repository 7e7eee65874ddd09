#pragma once
/// @file
/// Saving a deployable MatchingClassifier and loading it back: one safetensors file
/// (written atomically) holding the embedding network's state, the full context
/// embeddings' parameters when it has them, the support embeddings and their labels,
/// with the distance, scale and sizes in the metadata. Loading needs a module of the
/// embedding's architecture (its values are replaced), as a Module's own load does.
///
/// Layout: "embedding.<state entry>", "context.<parameter>", "support" [S, D],
/// "labels" [S]; metadata "format" = "metalearn.MatchingClassifier", "embedding" (the
/// module's type name), "distance", "scale", "ways", "context.dim", "context.steps".
// SPDX-License-Identifier: MIT

#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metalearn/algorithms/matching/matching_net.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/io/checkpoint.hpp"
#include "metalearn/io/safetensors.hpp"
#include "metalearn/nn/module.hpp"
#include "metalearn/tensor/factory.hpp"

namespace metalearn::train {

namespace detail {
inline constexpr std::string_view kMatchingClassifierFormat = "metalearn.MatchingClassifier";

/// The entries of `all` named `<prefix><name>`, as `<name>`.
template <class T>
nn::ParamDict<T> entries_under(const nn::ParamDict<T>& all, std::string_view prefix) {
  nn::ParamDict<T> out;
  for (const auto& [name, t] : all) {
    if (name.substr(0, prefix.size()) == prefix) out.insert(name.substr(prefix.size()), t);
  }
  return out;
}

inline const std::string& metadata_entry(const io::Metadata& metadata, const std::string& key,
                                         const std::filesystem::path& path) {
  const auto it = metadata.find(key);
  METALEARN_CHECK(it != metadata.end(), IoError, "load_matching_classifier: ", path.string(),
                  " has no metadata entry '", key, "'");
  return it->second;
}
}  // namespace detail

/// Writes `classifier` to `path` (atomically; NonFiniteError, with nothing written,
/// when a tensor holds NaN or an infinity).
template <class T>
void save_classifier(const algorithms::MatchingClassifier<T>& classifier,
                     const std::filesystem::path& path) {
  nn::ParamDict<T> tensors;
  for (const auto& [name, t] : classifier.embedding().state_dict()) {
    tensors.insert("embedding." + std::string(name), t);
  }
  io::Metadata metadata{
      {"format", std::string(detail::kMatchingClassifierFormat)},
      {"embedding", classifier.embedding().type_name()},
      {"distance", classifier.distance() == Distance::kCosine ? "cosine" : "squared_euclidean"},
      {"scale", io::detail::exact_decimal(static_cast<double>(classifier.scale()))},
      {"ways", std::to_string(classifier.ways())},
      {"context.dim", "0"},
      {"context.steps", "0"}};
  if (const auto* context = classifier.context(); context != nullptr) {
    for (const auto& [name, t] : context->named_parameters()) {
      tensors.insert("context." + std::string(name), t);
    }
    metadata["context.dim"] = std::to_string(context->dim());
    metadata["context.steps"] = std::to_string(context->steps());
  }
  tensors.insert("support", classifier.support_embeddings());
  std::vector<T> labels;
  for (const Index v : classifier.labels()) labels.push_back(static_cast<T>(v));
  tensors.insert("labels", from_vector<T>(labels));
  for (const auto& [name, t] : tensors) io::detail::check_finite_tensor(path, name, t);
  io::save_safetensors(path, tensors, metadata);
}

/// Reads a classifier written by save_classifier(): the embedding is a copy of
/// `architecture` with the file's state (strictly: every entry present and shaped as
/// the module's), so `architecture` must be the same kind of module, built with the
/// same sizes. Throws IoError naming the file when it is not such a file or is
/// damaged, ValueError / ShapeError naming the entry that does not fit.
template <class T>
algorithms::MatchingClassifier<T> load_matching_classifier(const std::filesystem::path& path,
                                                           const nn::Module<T>& architecture) {
  const auto [all, metadata] = io::load_safetensors_file<T>(path);
  METALEARN_CHECK(
      metadata.count("format") == 1 && metadata.at("format") == detail::kMatchingClassifierFormat,
      IoError, "load_matching_classifier: ", path.string(),
      " is not a saved MatchingClassifier (no format entry '", detail::kMatchingClassifierFormat,
      "')");
  const std::string& kind = detail::metadata_entry(metadata, "embedding", path);
  METALEARN_CHECK(kind == architecture.type_name(), ValueError,
                  "load_matching_classifier: ", path.string(), " holds a ", kind,
                  " embedding; the architecture given is a ", architecture.type_name());
  const std::string& distance_name = detail::metadata_entry(metadata, "distance", path);
  METALEARN_CHECK(distance_name == "cosine" || distance_name == "squared_euclidean", IoError,
                  "load_matching_classifier: ", path.string(), ": unknown distance '",
                  distance_name, "'");
  const Distance distance =
      distance_name == "cosine" ? Distance::kCosine : Distance::kSquaredEuclidean;
  Index dim = 0;
  int steps = 0;
  double scale = 0.0;
  try {
    scale = std::stod(detail::metadata_entry(metadata, "scale", path));
    dim = std::stoll(detail::metadata_entry(metadata, "context.dim", path));
    steps = std::stoi(detail::metadata_entry(metadata, "context.steps", path));
  } catch (const std::logic_error&) {
    metalearn::detail::throw_error<IoError>("load_matching_classifier: ", path.string(),
                                            ": unreadable scale or context sizes");
  }
  std::shared_ptr<nn::Module<T>> embedding(architecture.clone());
  embedding->load_state_dict(detail::entries_under(all, "embedding."));
  std::shared_ptr<algorithms::FullContextEmbedding<T>> context;
  if (dim > 0) {
    Generator unused(0);  // every parameter is replaced below
    context = std::make_shared<algorithms::FullContextEmbedding<T>>(dim, steps, unused);
    context->load_state_dict(detail::entries_under(all, "context."));
  }
  METALEARN_CHECK(all.contains("support") && all.contains("labels"), IoError,
                  "load_matching_classifier: ", path.string(),
                  " has no 'support' or 'labels' tensor");
  const Tensor<T>& labels_tensor = all.at("labels");
  std::vector<Index> labels;
  for (Index i = 0; i < labels_tensor.numel(); ++i) {
    const T v = labels_tensor.data()[i];
    METALEARN_CHECK(v >= T(0) && v == static_cast<T>(static_cast<Index>(v)), IoError,
                    "load_matching_classifier: ", path.string(), ": label ", v, " at position ", i,
                    " is not a class index");
    labels.push_back(static_cast<Index>(v));
  }
  return algorithms::MatchingClassifier<T>(std::move(embedding), std::move(context),
                                           all.at("support"), std::move(labels), distance,
                                           static_cast<T>(scale));
}

}  // namespace metalearn::train
