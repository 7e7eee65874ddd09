#pragma once
/// @file
/// ProceduralGlyphs: a synthetic few-shot image dataset that needs no download.

#include <cstdint>
#include <span>
#include <string>

#include "metalearn/core/export.hpp"
#include "metalearn/core/shape.hpp"
#include "metalearn/data/class_dataset.hpp"
#include "metalearn/data/task.hpp"

namespace metalearn::data {

/// Options of ProceduralGlyphs (designated-initializer friendly).
struct ProceduralGlyphsOptions {
  /// Seed of the whole dataset: same seed, same classes and the same images.
  std::uint64_t seed = 0;
  /// Which classes this object exposes: train classes come first, then validation,
  /// then test classes; the splits never share a class.
  Split split = Split::kTrain;
  Index train_classes = 1200;
  Index validation_classes = 0;
  Index test_classes = 400;
  Index examples_per_class = 20;
  /// Height and width of the images.
  Index image_size = 28;
  /// Scale of the variation between the examples of a class (pose, elastic bending,
  /// stroke placement and width, stray specks). 1 is the dataset's family, where a
  /// 20-way 1-shot nearest prototype on raw pixels or on an untrained ConvNet4 is far
  /// below a meta-trained ConvNet4; smaller values give easier families, and 0 draws
  /// every example of a class the same.
  double distortion = 1.0;
};

/// An Omniglot-like dataset of procedurally drawn glyphs.
///
/// Each class is 2-4 strokes (straight lines and circular arcs) drawn from a generator
/// seeded by (seed, class). Each example redraws them like another hand would, from a
/// generator seeded by (seed, class, example): a random affine pose of the glyph
/// (rotation up to 14 degrees, scale and aspect up to about 16% and 8%, shear, a shift
/// of up to 1.7 pixels at 28x28), each stroke moved, turned and resized on its own, a
/// smooth elastic displacement bending the strokes, a stroke width of 0.6-1.6 times
/// the class's, and up to two stray specks or short dashes of ink. `distortion`
/// scales all of it. Rasterisation is anti-aliased: a pixel's ink is its coverage by
/// the stroke (clamped distance to the stroke's centre line). Images are [1, S, S]
/// floats with 1.0 for ink and 0.0 for background, like OmniglotDataset.
///
/// The variation is what makes few-shot learning on it need meta-training: on 20-way
/// 1-shot test episodes, nearest prototype on raw pixels scores 51% and ProtoNet with
/// an untrained ConvNet4 38%, the same ConvNet4 meta-trained for 1,500 episodes (8
/// minutes of one core) 95% (benchmarks/results/procedural_glyphs.md).
///
/// Examples are rendered on demand (some tens of microseconds each at 28x28), so
/// construction is free, memory use is constant and load() is thread-safe.
///
/// @code
/// data::ProceduralGlyphs train({.split = data::Split::kTrain});
/// data::EpisodicSampler<float> episodes(train, {.ways = 5, .shots = 1});
/// @endcode
class METALEARN_API ProceduralGlyphs final : public ClassDataset {
 public:
  /// Throws ValueError for a split with no classes, fewer than 1 example per class, an
  /// image size below 8 or a negative or non-finite distortion.
  explicit ProceduralGlyphs(ProceduralGlyphsOptions options = {});

  [[nodiscard]] Index num_classes() const override { return num_classes_; }
  [[nodiscard]] Index examples_per_class(Index c) const override;
  [[nodiscard]] Shape example_shape() const override {
    return Shape{1, options_.image_size, options_.image_size};
  }
  void load(Index c, Index i, std::span<float> out) const override;
  [[nodiscard]] std::string name() const override;

  /// The dataset-wide id of class `c` of this split (train, validation and test ids differ).
  [[nodiscard]] Index global_class(Index c) const;
  [[nodiscard]] const ProceduralGlyphsOptions& options() const { return options_; }

 private:
  ProceduralGlyphsOptions options_;
  Index first_class_ = 0;
  Index num_classes_ = 0;
};

}  // namespace metalearn::data
