#pragma once
/// @file
/// ImageCompletionTasks: grey images as regression tasks from pixel coordinates to
/// intensity with random context pixels (the Neural Process papers' image completion).
// SPDX-License-Identifier: MIT

#include <algorithm>
#include <cstdint>
#include <memory>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/core/export.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/data/class_dataset.hpp"
#include "metalearn/data/task.hpp"
#include "metalearn/tensor/tensor.hpp"

namespace metalearn::data {

/// Options of ImageCompletionTasks.
struct ImageCompletionOptions {
  /// Context pixels per task: uniform in [min_context, max_context] (at most the image's
  /// pixel count).
  Index min_context = 3;
  Index max_context = 200;
  /// When true (the Neural Process training layout), the query set is the context pixels
  /// followed by every other pixel in raster order; otherwise only the other pixels.
  bool targets_include_context = true;
};

/// Image completion: each task is one image of a ClassDataset of grey images [1, H, W]
/// (a class drawn uniformly, then one of its examples). Inputs are pixel coordinates
/// (row, column) scaled to [-1, 1] ([n, 2]); targets are the pixels' intensities ([n, 1],
/// the dataset's values: ink 1, background 0 for Omniglot and the glyphs). The context
/// (support set) is C distinct pixels drawn uniformly, C uniform in [min_context,
/// max_context]; the query set is the context followed by the other pixels, or the other
/// pixels only. ways = 1, shots = C, queries = the query set's size. Params: "class",
/// "example".
///
/// @code
/// auto glyphs = std::make_shared<const data::ProceduralGlyphs>(
///     data::ProceduralGlyphsOptions{.split = Split::kTrain});
/// data::ImageCompletionTasks<float> images(glyphs, {.min_context = 10, .max_context = 100});
/// Generator gen(1);
/// data::Task<float> t = images.sample(gen);  // t.support_x [C, 2], t.query_y [784, 1]
/// @endcode
template <class T>
class METALEARN_API ImageCompletionTasks {
 public:
  using value_type = T;

  /// @throws ValueError when `images` is null, its examples are not [1, H, W], or the
  /// context range is empty or beyond the pixel count.
  explicit ImageCompletionTasks(std::shared_ptr<const ClassDataset> images,
                                ImageCompletionOptions options = {})
      : images_(std::move(images)), options_(options) {
    const char* f = "ImageCompletionTasks";
    METALEARN_CHECK(images_ != nullptr, ValueError, f, ": no image dataset");
    const Shape s = images_->example_shape();
    METALEARN_CHECK(s.dim() == 3 && s[0] == 1 && s[1] >= 1 && s[2] >= 1, ValueError, f, ": ",
                    images_->name(), " holds examples of shape ", s,
                    "; expected grey images [1, H, W]");
    METALEARN_CHECK(images_->num_classes() >= 1, ValueError, f, ": ", images_->name(),
                    " has no classes");
    height_ = s[1];
    width_ = s[2];
    const Index pixels = height_ * width_;
    METALEARN_CHECK(options_.min_context >= 0 && options_.min_context <= options_.max_context &&
                        options_.max_context <= pixels,
                    ValueError, f, ": need 0 <= min_context <= max_context <= ", pixels,
                    " (the pixels of an image), got ", options_.min_context, " and ",
                    options_.max_context);
  }

  /// Draws one task from `gen`: the image (class, then example), the context size, then
  /// the context pixels (a partial Fisher-Yates shuffle).
  [[nodiscard]] Task<T> sample(Generator& gen) const {
    const Index c = gen.randint(0, images_->num_classes() - 1);
    const Index i = gen.randint(0, images_->examples_per_class(c) - 1);
    return task_of(c, i, gen);
  }

  /// The task of example `i` of class `c` with context pixels drawn from `gen` (the
  /// context size, then the pixels): the same image under several context sizes.
  /// @throws ValueError when `c` or `i` is out of range.
  [[nodiscard]] Task<T> task_of(Index c, Index i, Generator& gen) const {
    const Index pixels = height_ * width_;
    std::vector<float> image(static_cast<std::size_t>(pixels));
    images_->load(c, i, image);
    const Index n = gen.randint(options_.min_context, options_.max_context);
    std::vector<Index> order(static_cast<std::size_t>(pixels));
    std::iota(order.begin(), order.end(), Index{0});
    for (Index k = 0; k < n; ++k) {
      const auto j = static_cast<std::size_t>(gen.randint(k, pixels - 1));
      std::swap(order[static_cast<std::size_t>(k)], order[j]);
    }
    // The other pixels in raster order.
    std::vector<char> in_context(static_cast<std::size_t>(pixels), 0);
    for (Index k = 0; k < n; ++k) in_context[static_cast<std::size_t>(order[k])] = 1;
    std::vector<Index> rest;
    rest.reserve(static_cast<std::size_t>(pixels - n));
    for (Index p = 0; p < pixels; ++p) {
      if (in_context[static_cast<std::size_t>(p)] == 0) rest.push_back(p);
    }
    std::vector<Index> query;
    if (options_.targets_include_context) {
      query.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n));
    }
    query.insert(query.end(), rest.begin(), rest.end());

    Task<T> task;
    task.ways = 1;
    task.shots = n;
    task.queries = static_cast<Index>(query.size());
    task.params = {{"class", static_cast<double>(c)}, {"example", static_cast<double>(i)}};
    const auto fill = [&](std::span<const Index> at, Tensor<T>& x, Tensor<T>& y) {
      const auto m = static_cast<Index>(at.size());
      x = Tensor<T>::empty(Shape{m, 2});
      y = Tensor<T>::empty(Shape{m, 1});
      for (Index k = 0; k < m; ++k) {
        const Index p = at[static_cast<std::size_t>(k)];
        x.data()[2 * k] = coordinate(p / width_, height_);
        x.data()[2 * k + 1] = coordinate(p % width_, width_);
        y.data()[k] = static_cast<T>(image[static_cast<std::size_t>(p)]);
      }
    };
    fill(std::span<const Index>(order.data(), static_cast<std::size_t>(n)), task.support_x,
         task.support_y);
    fill(query, task.query_x, task.query_y);
    return task;
  }

  /// The inputs of every pixel in raster order, [H * W, 2].
  [[nodiscard]] Tensor<T> coordinates() const {
    Tensor<T> x = Tensor<T>::empty(Shape{height_ * width_, 2});
    for (Index p = 0; p < height_ * width_; ++p) {
      x.data()[2 * p] = coordinate(p / width_, height_);
      x.data()[2 * p + 1] = coordinate(p % width_, width_);
    }
    return x;
  }

  /// The pixel (raster index) of an input (row, column) in [-1, 1], the inverse of
  /// the coordinates the tasks carry.
  [[nodiscard]] Index pixel_of(T row, T column) const {
    const auto index = [](T v, Index size) {
      if (size == 1) return Index{0};
      const double at = (static_cast<double>(v) + 1.0) * 0.5 * static_cast<double>(size - 1);
      return std::clamp(static_cast<Index>(at + 0.5), Index{0}, size - 1);
    };
    return index(row, height_) * width_ + index(column, width_);
  }

  [[nodiscard]] Index height() const { return height_; }
  [[nodiscard]] Index width() const { return width_; }
  [[nodiscard]] const ImageCompletionOptions& options() const { return options_; }
  [[nodiscard]] const std::shared_ptr<const ClassDataset>& images() const { return images_; }

 private:
  [[nodiscard]] static T coordinate(Index k, Index size) {
    return size == 1 ? T(0)
                     : static_cast<T>(-1.0 +
                                      2.0 * static_cast<double>(k) / static_cast<double>(size - 1));
  }

  std::shared_ptr<const ClassDataset> images_;
  ImageCompletionOptions options_;
  Index height_ = 0, width_ = 0;
};

}  // namespace metalearn::data
