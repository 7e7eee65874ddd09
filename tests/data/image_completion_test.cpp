// ImageCompletionTasks: pixel coordinates to intensities with random context pixels.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <metalearn/data.hpp>
#include <set>
#include <utility>
#include <vector>

namespace ml = metalearn;
namespace md = metalearn::data;

namespace {

// A tiny dataset of 2 classes x 3 examples of 4 x 5 images whose pixel p of example i of
// class c holds (100 c + 10 i + p) / 1000, so every value names its pixel.
class Numbered final : public md::ClassDataset {
 public:
  [[nodiscard]] ml::Index num_classes() const override { return 2; }
  [[nodiscard]] ml::Index examples_per_class(ml::Index /*c*/) const override { return 3; }
  [[nodiscard]] ml::Shape example_shape() const override { return {1, 4, 5}; }
  void load(ml::Index c, ml::Index i, std::span<float> out) const override {
    for (std::size_t p = 0; p < out.size(); ++p) {
      out[p] = static_cast<float>(100 * c + 10 * i + static_cast<ml::Index>(p)) / 1000.0F;
    }
  }
};

}  // namespace

TEST(ImageCompletionTasks, ContextAndTargetsAreThePixelsOfOneImage) {
  md::ImageCompletionTasks<float> family(std::make_shared<Numbered>(),
                                         {.min_context = 3, .max_context = 12});
  ml::Generator gen(2);
  for (int rep = 0; rep < 20; ++rep) {
    const auto task = family.sample(gen);
    const auto c = static_cast<ml::Index>(task.param("class"));
    const auto i = static_cast<ml::Index>(task.param("example"));
    ASSERT_GE(task.shots, 3);
    ASSERT_LE(task.shots, 12);
    ASSERT_EQ(task.support_x.shape(), (ml::Shape{task.shots, 2}));
    ASSERT_EQ(task.query_x.shape(), (ml::Shape{20, 2}));  // context first, then the rest
    std::set<ml::Index> seen;
    for (ml::Index k = 0; k < 20; ++k) {
      const float row = task.query_x.data()[2 * k];
      const float col = task.query_x.data()[2 * k + 1];
      EXPECT_GE(row, -1.0F);
      EXPECT_LE(row, 1.0F);
      const ml::Index p = family.pixel_of(row, col);
      seen.insert(p);
      // The target is the pixel the coordinates name.
      EXPECT_FLOAT_EQ(task.query_y.data()[k], static_cast<float>(100 * c + 10 * i + p) / 1000.0F);
      if (k < task.shots) {  // the query set begins with the context
        EXPECT_EQ(task.query_x.data()[2 * k], task.support_x.data()[2 * k]);
        EXPECT_EQ(task.query_y.data()[k], task.support_y.data()[k]);
      }
    }
    EXPECT_EQ(seen.size(), 20U);  // every pixel once: the context pixels are distinct
  }
  // The corners map to (-1, -1) and (1, 1).
  const auto x = family.coordinates();
  EXPECT_EQ(x.data()[0], -1.0F);
  EXPECT_EQ(x.data()[1], -1.0F);
  EXPECT_EQ(x.data()[2 * 19], 1.0F);
  EXPECT_EQ(x.data()[2 * 19 + 1], 1.0F);
}

TEST(ImageCompletionTasks, DeterministicAndOptions) {
  auto images = std::make_shared<Numbered>();
  md::ImageCompletionTasks<double> family(images, {.min_context = 5, .max_context = 5});
  ml::Generator a(7), b(7);
  const auto t1 = family.sample(a);
  const auto t2 = family.sample(b);
  ASSERT_EQ(t1.support_x.shape(), t2.support_x.shape());
  EXPECT_TRUE(std::equal(t1.support_x.data(), t1.support_x.data() + 10, t2.support_x.data()));

  // Without the context in the query set: the 15 other pixels, none of the context.
  md::ImageCompletionTasks<double> apart(
      images, {.min_context = 5, .max_context = 5, .targets_include_context = false});
  ml::Generator c(7);
  const auto t3 = apart.sample(c);
  ASSERT_EQ(t3.query_x.shape(), (ml::Shape{15, 2}));
  for (ml::Index q = 0; q < 15; ++q) {
    for (ml::Index s = 0; s < 5; ++s) {
      EXPECT_FALSE(t3.query_x.data()[2 * q] == t3.support_x.data()[2 * s] &&
                   t3.query_x.data()[2 * q + 1] == t3.support_x.data()[2 * s + 1]);
    }
  }
  // The same image under another context size.
  ml::Generator d(1);
  const auto same = apart.task_of(1, 2, d);
  EXPECT_EQ(same.param("class"), 1.0);
  EXPECT_EQ(same.param("example"), 2.0);

  EXPECT_THROW(md::ImageCompletionTasks<float>(nullptr), ml::ValueError);
  EXPECT_THROW(md::ImageCompletionTasks<float>(images, {.min_context = 5, .max_context = 21}),
               ml::ValueError);
  EXPECT_THROW(md::ImageCompletionTasks<float>(images, {.min_context = 6, .max_context = 5}),
               ml::ValueError);
}
