// Tests of EpisodicSampler and ProceduralGlyphs.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <metalearn/data.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ml = metalearn;
namespace md = metalearn::data;

namespace {

/// A dataset whose examples encode their own (class, index): pixel 0 = class, pixel 1 =
/// index, so a test can tell exactly which example ended up where.
class TaggedDataset final : public md::ClassDataset {
 public:
  explicit TaggedDataset(std::vector<ml::Index> sizes) : sizes_(std::move(sizes)) {}
  [[nodiscard]] ml::Index num_classes() const override {
    return static_cast<ml::Index>(sizes_.size());
  }
  [[nodiscard]] ml::Index examples_per_class(ml::Index c) const override {
    return sizes_[static_cast<std::size_t>(c)];
  }
  [[nodiscard]] ml::Shape example_shape() const override { return ml::Shape{1, 2, 2}; }
  void load(ml::Index c, ml::Index i, std::span<float> out) const override {
    out[0] = static_cast<float>(c);
    out[1] = static_cast<float>(i);
    out[2] = 0.5f;
    out[3] = -1.0f;
  }
  [[nodiscard]] std::string name() const override { return "TaggedDataset"; }

 private:
  std::vector<ml::Index> sizes_;
};

using Example = std::pair<ml::Index, ml::Index>;

template <class T>
Example tag(const ml::Tensor<T>& x, ml::Index row) {
  return {static_cast<ml::Index>(x.data()[row * 4]), static_cast<ml::Index>(x.data()[row * 4 + 1])};
}

}  // namespace

TEST(EpisodicSampler, ShapesBalanceDisjointnessAndLabelRemapping) {
  auto ds = std::make_shared<TaggedDataset>(std::vector<ml::Index>(30, 12));
  md::EpisodicSampler<double> sampler(ds, {.ways = 5, .shots = 3, .queries = 4});
  ml::Generator gen(1);
  std::set<std::vector<ml::Index>> class_orders;
  for (int rep = 0; rep < 40; ++rep) {
    const auto task = sampler.sample(gen);
    ASSERT_EQ(task.support_x.shape(), (ml::Shape{15, 1, 2, 2}));
    ASSERT_EQ(task.support_labels.size(), 15u);
    EXPECT_FALSE(task.support_y.defined()) << "class labels only, no float copy";
    ASSERT_EQ(task.query_x.shape(), (ml::Shape{20, 1, 2, 2}));
    ASSERT_EQ(task.query_labels.size(), 20u);
    EXPECT_TRUE(task.classification());
    EXPECT_EQ(task.ways, 5);
    EXPECT_EQ(task.shots, 3);
    EXPECT_EQ(task.queries, 4);
    ASSERT_EQ(task.classes.size(), 5u);
    EXPECT_EQ(std::set<ml::Index>(task.classes.begin(), task.classes.end()).size(), 5u);
    class_orders.insert(task.classes);

    std::map<ml::Index, int> support_count;
    std::map<ml::Index, int> query_count;
    std::set<Example> support;
    for (ml::Index r = 0; r < 15; ++r) {
      const auto label = task.support_labels[static_cast<std::size_t>(r)];
      ASSERT_GE(label, 0);
      ASSERT_LT(label, 5);
      EXPECT_EQ(label, r / 3) << "support is grouped by label when shuffle is false";
      const Example e = tag(task.support_x, r);
      EXPECT_EQ(e.first, task.classes[static_cast<std::size_t>(label)]);
      EXPECT_EQ(task.support_x.data()[r * 4 + 2], 0.5);
      support.insert(e);
      ++support_count[label];
    }
    EXPECT_EQ(support.size(), 15u) << "support examples are distinct";
    for (ml::Index r = 0; r < 20; ++r) {
      const auto label = task.query_labels[static_cast<std::size_t>(r)];
      EXPECT_EQ(label, r / 4);
      const Example e = tag(task.query_x, r);
      EXPECT_EQ(e.first, task.classes[static_cast<std::size_t>(label)]);
      EXPECT_EQ(support.count(e), 0u) << "query example also in support";
      ++query_count[label];
    }
    for (ml::Index l = 0; l < 5; ++l) {
      EXPECT_EQ(support_count[l], 3);
      EXPECT_EQ(query_count[l], 4);
    }
  }
  // Labels are a random remapping: the class behind label 0 changes between episodes
  // and is not simply the smallest class id.
  EXPECT_GT(class_orders.size(), 30u);
  bool unsorted = false;
  for (const auto& order : class_orders)
    unsorted = unsorted || !std::is_sorted(order.begin(), order.end());
  EXPECT_TRUE(unsorted);
}

TEST(EpisodicSampler, ShuffleKeepsPairsAndPermutesRows) {
  TaggedDataset ds(std::vector<ml::Index>(10, 8));
  md::EpisodicSampler<float> grouped(ds, {.ways = 4, .shots = 2, .queries = 3});
  md::EpisodicSampler<float> shuffled(ds, {.ways = 4, .shots = 2, .queries = 3, .shuffle = true});
  ml::Generator gen(2);
  bool some_out_of_order = false;
  for (int rep = 0; rep < 10; ++rep) {
    const auto task = shuffled.sample(gen);
    std::map<ml::Index, int> count;
    for (ml::Index r = 0; r < 12; ++r) {
      const auto label = task.query_labels[static_cast<std::size_t>(r)];
      EXPECT_EQ(tag(task.query_x, r).first, task.classes[static_cast<std::size_t>(label)]);
      ++count[label];
      some_out_of_order = some_out_of_order || label != r / 3;
    }
    for (ml::Index l = 0; l < 4; ++l) EXPECT_EQ(count[l], 3);
  }
  EXPECT_TRUE(some_out_of_order);
  (void)grouped;
}

TEST(EpisodicSampler, SameSeedSameEpisodeDifferentSeedDifferentEpisode) {
  md::ProceduralGlyphs glyphs({.train_classes = 100});
  md::EpisodicSampler<float> sampler(glyphs, {.ways = 5, .shots = 1, .queries = 2});
  ml::Generator g1(4);
  ml::Generator g2(4);
  ml::Generator g3(5);
  const auto a = sampler.sample(g1);
  const auto b = sampler.sample(g2);
  const auto c = sampler.sample(g3);
  EXPECT_EQ(a.classes, b.classes);
  EXPECT_EQ(std::memcmp(a.support_x.data(), b.support_x.data(), sizeof(float) * 5 * 784), 0);
  EXPECT_EQ(std::memcmp(a.query_x.data(), b.query_x.data(), sizeof(float) * 10 * 784), 0);
  EXPECT_NE(a.classes, c.classes);
}

TEST(EpisodicSampler, TooManyWaysOrExamplesThrowNamingTheClass) {
  TaggedDataset ds({20, 20, 7, 20});
  try {
    md::EpisodicSampler<float> s(ds, {.ways = 5, .shots = 1, .queries = 1});
    FAIL() << "expected ValueError";
  } catch (const ml::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("5 ways"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("only 4 classes"), std::string::npos) << e.what();
  }
  try {
    md::EpisodicSampler<float> s(ds, {.ways = 2, .shots = 5, .queries = 5});
    FAIL() << "expected ValueError";
  } catch (const ml::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("class 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("only 7 examples"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(md::EpisodicSampler<float>(ds, {.ways = 4, .shots = 2, .queries = 5}));
  EXPECT_THROW(md::EpisodicSampler<float>(ds, {.ways = 0}), ml::ValueError);
}

TEST(ProceduralGlyphs, DefaultsLikeOmniglot) {
  md::ProceduralGlyphs train;
  md::ProceduralGlyphs test({.split = md::Split::kTest});
  EXPECT_EQ(train.num_classes(), 1200);
  EXPECT_EQ(test.num_classes(), 400);
  EXPECT_EQ(train.examples_per_class(0), 20);
  EXPECT_EQ(train.example_shape(), (ml::Shape{1, 28, 28}));
  EXPECT_EQ(test.global_class(0), 1200);
  EXPECT_THROW(md::ProceduralGlyphs({.split = md::Split::kValidation}), ml::ValueError);
  md::ProceduralGlyphs val({.split = md::Split::kValidation, .validation_classes = 50});
  EXPECT_EQ(val.num_classes(), 50);
  EXPECT_EQ(val.global_class(0), 1200);
}

TEST(ProceduralGlyphs, ImagesAreInkOnBlankDeterministicAndVaried) {
  md::ProceduralGlyphs glyphs({.seed = 3});
  std::vector<float> a(784);
  std::vector<float> b(784);
  std::vector<float> c(784);
  std::vector<float> d(784);
  glyphs.load(10, 0, a);
  glyphs.load(10, 0, b);
  glyphs.load(10, 1, c);
  glyphs.load(11, 0, d);
  EXPECT_EQ(a, b);
  double ink = 0;
  int fractional = 0;
  for (float v : a) {
    ASSERT_GE(v, 0.0f);
    ASSERT_LE(v, 1.0f);
    ink += v;
    fractional += (v > 0.05f && v < 0.95f);
  }
  EXPECT_GT(ink, 20.0) << "a glyph has visible strokes";
  EXPECT_LT(ink, 500.0) << "a glyph is mostly background";
  EXPECT_GT(fractional, 5) << "strokes are anti-aliased";
  EXPECT_NE(a, c) << "examples of a class are jittered";
  EXPECT_NE(a, d) << "classes differ";

  // Two examples of one class are closer than examples of two classes, on average.
  auto dist = [](const std::vector<float>& x, const std::vector<float>& y) {
    double s = 0;
    for (std::size_t i = 0; i < x.size(); ++i) s += (x[i] - y[i]) * (x[i] - y[i]);
    return s;
  };
  double within = 0;
  double between = 0;
  for (ml::Index k = 0; k < 40; ++k) {
    glyphs.load(k, 0, a);
    glyphs.load(k, 1, b);
    glyphs.load(k + 1, 0, c);
    within += dist(a, b);
    between += dist(a, c);
  }
  EXPECT_LT(within, 0.8 * between);

  md::ProceduralGlyphs other({.seed = 4});
  other.load(10, 0, b);
  glyphs.load(10, 0, a);
  EXPECT_NE(a, b) << "the seed changes the dataset";
  EXPECT_THROW(glyphs.load(1200, 0, a), ml::ValueError);
  std::vector<float> small(10);
  EXPECT_THROW(glyphs.load(0, 0, small), ml::ValueError);
}

TEST(ProceduralGlyphs, DistortionScalesTheVariationAndIsValidated) {
  std::vector<float> a(784);
  std::vector<float> b(784);
  md::ProceduralGlyphs fixed({.distortion = 0.0});
  fixed.load(7, 0, a);
  fixed.load(7, 5, b);
  EXPECT_EQ(a, b) << "without distortion every example of a class is the same";
  fixed.load(8, 0, b);
  EXPECT_NE(a, b);
  md::ProceduralGlyphs glyphs;
  EXPECT_EQ(glyphs.options().distortion, 1.0);
  glyphs.load(7, 0, a);
  glyphs.load(7, 5, b);
  EXPECT_NE(a, b);
  for (double bad :
       {-0.1, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
    try {
      md::ProceduralGlyphs g({.distortion = bad});
      FAIL() << "expected ValueError for distortion " << bad;
    } catch (const ml::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("distortion"), std::string::npos) << e.what();
    }
  }
}

// The default family must stay hard for a nearest prototype on raw pixels (about 51%
// on 20-way 1-shot test episodes; 95% at half the distortion), so that meta-training
// visibly helps on it.
TEST(ProceduralGlyphs, RawPixelNearestPrototypeIsFarFromPerfect) {
  auto pixel_accuracy = [](double distortion) {
    md::ProceduralGlyphs test({.split = md::Split::kTest, .distortion = distortion});
    md::EpisodicSampler<float> episodes(test, {.ways = 20, .shots = 1, .queries = 5});
    ml::Generator gen(11);
    int right = 0;
    int total = 0;
    for (int e = 0; e < 40; ++e) {
      const auto task = episodes.sample(gen);
      const ml::Index d = 784;
      for (ml::Index q = 0; q < task.query_x.shape()[0]; ++q) {
        double best = std::numeric_limits<double>::infinity();
        ml::Index label = -1;
        for (ml::Index s = 0; s < task.support_x.shape()[0]; ++s) {
          double dist = 0;
          for (ml::Index j = 0; j < d; ++j) {
            const double diff = task.query_x.data()[q * d + j] - task.support_x.data()[s * d + j];
            dist += diff * diff;
          }
          if (dist < best) {
            best = dist;
            label = task.support_labels[static_cast<std::size_t>(s)];
          }
        }
        right += label == task.query_labels[static_cast<std::size_t>(q)];
        ++total;
      }
    }
    return static_cast<double>(right) / total;
  };
  const double hard = pixel_accuracy(1.0);
  const double milder = pixel_accuracy(0.5);
  EXPECT_LT(hard, 0.65);
  EXPECT_GT(hard, 0.3) << "examples of a class still look alike";
  EXPECT_GT(milder, 0.85);
}
