#pragma once
/// @file
/// ClassDataset: the interface of a labelled dataset that few-shot episodes are drawn from.

#include <span>
#include <string>

#include "metalearn/core/shape.hpp"

namespace metalearn::data {

/// A dataset of examples grouped by class, e.g.\ the characters of Omniglot.
///
/// Implementations are immutable after construction: every const method may be called
/// concurrently from several threads (EpisodicSampler relies on this).
class ClassDataset {
 public:
  virtual ~ClassDataset() = default;

  /// Number of classes; classes are 0..num_classes()-1.
  [[nodiscard]] virtual Index num_classes() const = 0;
  /// Number of examples of class `c`; examples are 0..examples_per_class(c)-1.
  [[nodiscard]] virtual Index examples_per_class(Index c) const = 0;
  /// Shape of one example, e.g. {1, 28, 28} for a grey image (C, H, W).
  [[nodiscard]] virtual Shape example_shape() const = 0;
  /// Writes example `i` of class `c` (example_shape().numel() values, row-major) to `out`.
  /// Throws ValueError when `c` or `i` is out of range or `out` has the wrong size.
  virtual void load(Index c, Index i, std::span<float> out) const = 0;
  /// A short name used in error messages.
  [[nodiscard]] virtual std::string name() const { return "ClassDataset"; }
};

}  // namespace metalearn::data
