// Tests of OmniglotDataset and the PNG reader: a small layout written by the tests
// (cache behaviour, bad inputs), and the real dataset when METALEARN_OMNIGLOT_DIR is set.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <metalearn/data.hpp>
#include <random>
#include <string>
#include <vector>

namespace ml = metalearn;
namespace md = metalearn::data;
namespace fs = std::filesystem;

namespace {

constexpr ml::Index kSrc = md::OmniglotDataset::kSourceSize;

/// A 105x105 image, black (ink) where `ink(y, x)` is true, white elsewhere.
template <class F>
md::GrayImage make_image(F ink) {
  md::GrayImage img{kSrc, kSrc, std::vector<std::uint8_t>(static_cast<std::size_t>(kSrc * kSrc))};
  for (ml::Index y = 0; y < kSrc; ++y)
    for (ml::Index x = 0; x < kSrc; ++x)
      img.pixels[static_cast<std::size_t>(y * kSrc + x)] = ink(y, x) ? 0 : 255;
  return img;
}

/// A fresh temporary folder holding a small Omniglot-like layout:
/// images_background/{Alpha/character01, Alpha/character02, Beta/character01} and
/// images_evaluation/Gamma/character01, three images each. Image 0 of every character has
/// ink on its left half (x < 52), the others are a class-dependent square.
class FakeOmniglot : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::random_device rd;
    root_ = fs::temp_directory_path() /
            ("metalearn_omniglot_" + std::string(info->name()) + "_" + std::to_string(rd()));
    fs::create_directories(root_);
    cache_ = root_ / "cache";
    int k = 0;
    for (const char* dir :
         {"images_background/Alpha/character01", "images_background/Alpha/character02",
          "images_background/Beta/character01", "images_evaluation/Gamma/character01"}) {
      fs::create_directories(root_ / dir);
      md::write_png_gray(root_ / dir / "a_01.png",
                         make_image([](ml::Index, ml::Index x) { return x < 52; }));
      for (int i = 2; i <= 3; ++i) {
        const ml::Index lo = 10 * k + 5 * i;
        md::write_png_gray(root_ / dir / ("a_0" + std::to_string(i) + ".png"),
                           make_image([&](ml::Index y, ml::Index x) {
                             return y >= lo && y < lo + 30 && x >= lo && x < lo + 20;
                           }));
      }
      ++k;
    }
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  md::OmniglotOptions options(md::OmniglotSplit split = md::OmniglotSplit::kBackground) const {
    return {.root = root_, .split = split, .cache_dir = cache_};
  }

  static std::vector<float> image(const md::OmniglotDataset& ds, ml::Index c, ml::Index i) {
    const ml::Index s = ds.example_shape()[1];
    std::vector<float> out(static_cast<std::size_t>(s * s));
    ds.load(c, i, out);
    return out;
  }

  template <class F>
  static void expect_io_error(F f, const std::string& needle) {
    try {
      f();
      FAIL() << "expected IoError mentioning " << needle;
    } catch (const ml::IoError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }

  fs::path root_;
  fs::path cache_;
};

}  // namespace

TEST_F(FakeOmniglot, LoadsLayoutResizesAndInverts) {
  md::OmniglotDataset bg(options());
  EXPECT_EQ(bg.num_characters(), 3);
  EXPECT_EQ(bg.num_classes(), 3);
  EXPECT_EQ(bg.num_alphabets(), 2);
  EXPECT_EQ(bg.num_images(), 9);
  EXPECT_EQ(bg.examples_per_class(2), 3);
  EXPECT_EQ(bg.class_name(0), "Alpha/character01");
  EXPECT_EQ(bg.class_name(2), "Beta/character01");
  EXPECT_EQ(bg.example_shape(), (ml::Shape{1, 28, 28}));
  // Ink where the PNG is black. Output column 13 covers source [48.75, 52.5): ink on
  // [48.75, 52) is 3.25 of 3.75 pixels.
  const auto img = image(bg, 1, 0);
  for (ml::Index y = 0; y < 28; ++y) {
    EXPECT_FLOAT_EQ(img[static_cast<std::size_t>(y * 28 + 0)], 1.0f);
    EXPECT_FLOAT_EQ(img[static_cast<std::size_t>(y * 28 + 12)], 1.0f);
    EXPECT_NEAR(img[static_cast<std::size_t>(y * 28 + 13)], 3.25 / 3.75, 1e-6);
    EXPECT_FLOAT_EQ(img[static_cast<std::size_t>(y * 28 + 14)], 0.0f);
    EXPECT_FLOAT_EQ(img[static_cast<std::size_t>(y * 28 + 27)], 0.0f);
  }
  md::OmniglotDataset ev(options(md::OmniglotSplit::kEvaluation));
  EXPECT_EQ(ev.num_characters(), 1);
  EXPECT_EQ(ev.class_name(0), "Gamma/character01");
  md::OmniglotDataset all(options(md::OmniglotSplit::kAll));
  EXPECT_EQ(all.num_characters(), 4);
  EXPECT_EQ(all.class_name(3), "Gamma/character01");
  EXPECT_THROW(md::OmniglotDataset(options(md::OmniglotSplit::kVinyalsTrain)), ml::ValueError);
  EXPECT_THROW((void)image(bg, 3, 0), ml::ValueError);
  EXPECT_THROW((void)image(bg, 0, 3), ml::ValueError);
}

TEST_F(FakeOmniglot, WithSplitSharesTheLoadedImages) {
  md::OmniglotDataset all(options(md::OmniglotSplit::kAll));
  const md::OmniglotDataset bg = all.with_split(md::OmniglotSplit::kBackground, false);
  const md::OmniglotDataset direct(options());
  ASSERT_EQ(bg.num_classes(), direct.num_classes());
  for (ml::Index c = 0; c < 3; ++c) {
    EXPECT_EQ(bg.class_name(c), direct.class_name(c));
    EXPECT_EQ(image(bg, c, 1), image(direct, c, 1));
  }
  const md::OmniglotDataset ev = all.with_split(md::OmniglotSplit::kEvaluation, true);
  EXPECT_EQ(ev.num_classes(), 4);
  EXPECT_EQ(ev.class_name(3), "Gamma/character01");
  EXPECT_THROW((void)direct.with_split(md::OmniglotSplit::kEvaluation, false), ml::ValueError);
}

TEST_F(FakeOmniglot, RotationsGiveFourClassesPerCharacter) {
  auto o = options();
  o.rotations = true;
  md::OmniglotDataset ds(o);
  ASSERT_EQ(ds.num_classes(), 12);
  EXPECT_EQ(ds.character_of(5), 1);
  EXPECT_EQ(ds.rotation_of(5), 1);
  // Character 1, image 0 has ink on the left half. Rotated 90 degrees counter-clockwise
  // the ink is on the bottom half, 180: right half, 270: top half.
  const auto r0 = image(ds, 4, 0);
  const auto r1 = image(ds, 5, 0);
  const auto r2 = image(ds, 6, 0);
  const auto r3 = image(ds, 7, 0);
  auto at = [](const std::vector<float>& v, ml::Index y, ml::Index x) {
    return v[static_cast<std::size_t>(y * 28 + x)];
  };
  EXPECT_EQ(at(r0, 5, 2), 1.0f);
  EXPECT_EQ(at(r0, 5, 25), 0.0f);
  EXPECT_EQ(at(r1, 25, 5), 1.0f);
  EXPECT_EQ(at(r1, 2, 5), 0.0f);
  EXPECT_EQ(at(r2, 5, 25), 1.0f);
  EXPECT_EQ(at(r2, 5, 2), 0.0f);
  EXPECT_EQ(at(r3, 2, 5), 1.0f);
  EXPECT_EQ(at(r3, 25, 5), 0.0f);
  // Every rotation keeps the total ink.
  double s0 = 0, s3 = 0;
  const auto q0 = image(ds, 8, 1);
  const auto q3 = image(ds, 11, 1);
  for (std::size_t i = 0; i < q0.size(); ++i) {
    s0 += q0[i];
    s3 += q3[i];
  }
  EXPECT_NEAR(s0, s3, 1e-4);
  EXPECT_GT(s0, 1.0);
}

TEST_F(FakeOmniglot, CacheIsWrittenThenReused) {
  md::OmniglotDataset first(options());
  EXPECT_FALSE(first.loaded_from_cache());
  ASSERT_EQ(first.cache_files().size(), 1u);
  EXPECT_TRUE(fs::exists(first.cache_files()[0]));
  md::OmniglotDataset second(options());
  EXPECT_TRUE(second.loaded_from_cache());
  for (ml::Index c = 0; c < 3; ++c)
    for (ml::Index i = 0; i < 3; ++i) EXPECT_EQ(image(first, c, i), image(second, c, i));
  // No temporary files are left behind.
  int files = 0;
  for (const auto& e : fs::directory_iterator(cache_)) {
    ++files;
    EXPECT_EQ(e.path().extension(), ".mlcache") << e.path();
  }
  EXPECT_EQ(files, 1);
  // Another image size is another cache, not a clash.
  auto o = options();
  o.image_size = 14;
  md::OmniglotDataset small(o);
  EXPECT_FALSE(small.loaded_from_cache());
  EXPECT_EQ(small.example_shape(), (ml::Shape{1, 14, 14}));
  EXPECT_TRUE(md::OmniglotDataset(options()).loaded_from_cache());
  // use_cache = false never touches the cache.
  o = options();
  o.use_cache = false;
  md::OmniglotDataset uncached(o);
  EXPECT_FALSE(uncached.loaded_from_cache());
  EXPECT_TRUE(uncached.cache_files().empty());
}

TEST_F(FakeOmniglot, StaleCacheIsRebuilt) {
  (void)md::OmniglotDataset(options());
  ASSERT_TRUE(md::OmniglotDataset(options()).loaded_from_cache());
  md::write_png_gray(root_ / "images_background/Beta/character01/a_04.png",
                     make_image([](ml::Index y, ml::Index) { return y < 10; }));
  md::OmniglotDataset changed(options());
  EXPECT_FALSE(changed.loaded_from_cache());
  EXPECT_EQ(changed.examples_per_class(2), 4);
  EXPECT_EQ(changed.num_images(), 10);
  EXPECT_TRUE(md::OmniglotDataset(options()).loaded_from_cache());
}

TEST_F(FakeOmniglot, CorruptOrTruncatedCacheIsRebuilt) {
  md::OmniglotDataset reference(options());
  const fs::path file = reference.cache_files().at(0);
  const auto size = fs::file_size(file);
  {
    // Flip one byte in the pixel data.
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(size - 200));
    char byte = 0;
    f.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x5A);
    f.seekp(static_cast<std::streamoff>(size - 200));
    f.write(&byte, 1);
  }
  md::OmniglotDataset after_corruption(options());
  EXPECT_FALSE(after_corruption.loaded_from_cache());
  for (ml::Index c = 0; c < 3; ++c)
    for (ml::Index i = 0; i < 3; ++i)
      EXPECT_EQ(image(after_corruption, c, i), image(reference, c, i));

  fs::resize_file(file, size / 2);
  md::OmniglotDataset after_truncation(options());
  EXPECT_FALSE(after_truncation.loaded_from_cache());
  EXPECT_EQ(image(after_truncation, 2, 1), image(reference, 2, 1));
  EXPECT_EQ(fs::file_size(file), size);

  { std::ofstream(file, std::ios::binary | std::ios::trunc) << "not a cache"; }
  EXPECT_FALSE(md::OmniglotDataset(options()).loaded_from_cache());
  EXPECT_TRUE(md::OmniglotDataset(options()).loaded_from_cache());
}

TEST_F(FakeOmniglot, MissingFolderThrowsIoError) {
  fs::remove_all(root_ / "images_evaluation");
  EXPECT_NO_THROW(md::OmniglotDataset{options()});
  expect_io_error([&] { md::OmniglotDataset ds(options(md::OmniglotSplit::kEvaluation)); },
                  "images_evaluation");
  auto o = options();
  o.root = root_ / "nowhere";
  expect_io_error([&] { md::OmniglotDataset ds(o); }, "nowhere");
}

TEST_F(FakeOmniglot, EmptyClassFolderThrowsIoError) {
  fs::create_directories(root_ / "images_background/Beta/character02");
  expect_io_error([&] { md::OmniglotDataset ds(options()); }, "Beta/character02");
}

TEST_F(FakeOmniglot, TruncatedPngThrowsIoErrorNamingTheFile) {
  const fs::path file = root_ / "images_background/Alpha/character02/a_02.png";
  fs::resize_file(file, fs::file_size(file) / 2);
  expect_io_error([&] { md::OmniglotDataset ds(options()); }, file.string());
  expect_io_error([&] { (void)md::read_png_gray(file); }, file.string());
}

TEST_F(FakeOmniglot, NonPngThrowsIoErrorNamingTheFile) {
  const fs::path file = root_ / "images_background/Alpha/character01/a_03.png";
  { std::ofstream(file, std::ios::binary | std::ios::trunc) << "GIF89a, not a PNG at all"; }
  expect_io_error([&] { md::OmniglotDataset ds(options()); }, file.string());
  expect_io_error([&] { (void)md::read_png_gray(root_ / "missing.png"); }, "missing.png");
}

TEST_F(FakeOmniglot, WrongImageSizeThrowsIoErrorNamingTheFile) {
  const fs::path file = root_ / "images_background/Beta/character01/a_02.png";
  md::write_png_gray(file, md::GrayImage{50, 40, std::vector<std::uint8_t>(2000, 255)});
  expect_io_error([&] { md::OmniglotDataset ds(options()); }, file.string());
  expect_io_error([&] { md::OmniglotDataset ds(options()); }, "50x40");
}

TEST(Png, WriteThenReadRoundTrips) {
  std::random_device rd;
  const fs::path file =
      fs::temp_directory_path() / ("metalearn_png_" + std::to_string(rd()) + ".png");
  md::GrayImage img{7, 3, {}};
  for (int i = 0; i < 21; ++i) img.pixels.push_back(static_cast<std::uint8_t>(i * 12));
  md::write_png_gray(file, img);
  const md::GrayImage back = md::read_png_gray(file);
  fs::remove(file);
  EXPECT_EQ(back.width, 7);
  EXPECT_EQ(back.height, 3);
  EXPECT_EQ(back.pixels, img.pixels);
  EXPECT_THROW(md::write_png_gray(file, md::GrayImage{4, 4, {1, 2, 3}}), ml::ValueError);
}

// ---- the real dataset ----------------------------------------------------------------

namespace {

const char* omniglot_dir() {
  const char* dir = std::getenv("METALEARN_OMNIGLOT_DIR");
  return dir != nullptr && *dir != '\0' ? dir : nullptr;
}

}  // namespace

/// Loads each split once for the whole suite (the first run builds the cache, later runs
/// read it).
class RealOmniglot : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (omniglot_dir() == nullptr) return;
    const md::OmniglotDataset all({.split = md::OmniglotSplit::kAll});
    background_ = std::make_unique<md::OmniglotDataset>(
        all.with_split(md::OmniglotSplit::kBackground, false));
    evaluation_ = std::make_unique<md::OmniglotDataset>(
        all.with_split(md::OmniglotSplit::kEvaluation, false));
    vinyals_train_ = std::make_unique<md::OmniglotDataset>(
        all.with_split(md::OmniglotSplit::kVinyalsTrain, true));
    vinyals_test_ = std::make_unique<md::OmniglotDataset>(
        all.with_split(md::OmniglotSplit::kVinyalsTest, false));
  }
  static void TearDownTestSuite() {
    background_.reset();
    evaluation_.reset();
    vinyals_train_.reset();
    vinyals_test_.reset();
  }
  void SetUp() override {
    if (omniglot_dir() == nullptr) {
      GTEST_SKIP() << "METALEARN_OMNIGLOT_DIR is not set; point it at the folder holding "
                      "images_background/ and images_evaluation/ to run the Omniglot tests";
    }
  }

  static ml::Index find_class(const md::OmniglotDataset& ds, const std::string& name) {
    for (ml::Index c = 0; c < ds.num_classes(); ++c) {
      if (ds.class_name(c) == name) return c;
    }
    return -1;
  }

  static std::unique_ptr<md::OmniglotDataset> background_;
  static std::unique_ptr<md::OmniglotDataset> evaluation_;
  static std::unique_ptr<md::OmniglotDataset> vinyals_train_;
  static std::unique_ptr<md::OmniglotDataset> vinyals_test_;
};

std::unique_ptr<md::OmniglotDataset> RealOmniglot::background_;
std::unique_ptr<md::OmniglotDataset> RealOmniglot::evaluation_;
std::unique_ptr<md::OmniglotDataset> RealOmniglot::vinyals_train_;
std::unique_ptr<md::OmniglotDataset> RealOmniglot::vinyals_test_;

TEST_F(RealOmniglot, ClassAndImageCountsOfBothSplits) {
  EXPECT_EQ(background_->num_alphabets(), 30);
  EXPECT_EQ(background_->num_characters(), 964);
  EXPECT_EQ(background_->num_images(), 964 * 20);
  EXPECT_EQ(evaluation_->num_alphabets(), 20);
  EXPECT_EQ(evaluation_->num_characters(), 659);
  EXPECT_EQ(evaluation_->num_images(), 659 * 20);
  for (ml::Index c = 0; c < background_->num_classes(); ++c)
    ASSERT_EQ(background_->examples_per_class(c), 20) << background_->class_name(c);
  for (ml::Index c = 0; c < evaluation_->num_classes(); ++c)
    ASSERT_EQ(evaluation_->examples_per_class(c), 20) << evaluation_->class_name(c);
  EXPECT_EQ(background_->num_characters() + evaluation_->num_characters(), 1623);
}

TEST_F(RealOmniglot, VinyalsSplitIsSortedAndDisjoint) {
  EXPECT_EQ(vinyals_train_->num_characters(), 1200);
  EXPECT_EQ(vinyals_train_->num_classes(), 4800);
  EXPECT_EQ(vinyals_test_->num_characters(), 423);
  EXPECT_EQ(vinyals_test_->num_classes(), 423);
  const std::string last_train = vinyals_train_->class_name(4799);
  EXPECT_LT(last_train, vinyals_test_->class_name(0));
  for (ml::Index c = 1; c < vinyals_test_->num_classes(); ++c)
    ASSERT_LT(vinyals_test_->class_name(c - 1), vinyals_test_->class_name(c));
}

// Expected values come from tests/data/reference/omniglot_pixels.py, which decodes the
// PNGs with its own pure-Python reader and area-averages them to 28x28:
//   images_background/Latin/character01/0683_01.png: max 1.0 at (17, 18); 0.751111 at (11, 17);
//   sum 39.751111 images_background/Greek/character05/0398_03.png: max 1.0 at (17, 16); 0.773333 at
//   (11, 10); sum 37.546667 images_evaluation/Tengwar/character10/1540_20.png: max 1.0 at (21, 16);
//   0.782222 at (6, 6); sum 74.666667
TEST_F(RealOmniglot, KnownPixels) {
  struct Expect {
    const md::OmniglotDataset* ds;
    std::string name;
    ml::Index example;
    ml::Index y1, x1;
    ml::Index y2, x2;
    double v2;
    double sum;
  };
  const std::vector<Expect> cases = {
      {background_.get(), "Latin/character01", 0, 17, 18, 11, 17, 0.751111, 39.751111},
      {background_.get(), "Greek/character05", 2, 17, 16, 11, 10, 0.773333, 37.546667},
      {evaluation_.get(), "Tengwar/character10", 19, 21, 16, 6, 6, 0.782222, 74.666667},
  };
  for (const auto& e : cases) {
    const ml::Index c = find_class(*e.ds, e.name);
    ASSERT_GE(c, 0) << e.name;
    std::vector<float> img(784);
    e.ds->load(c, e.example, img);
    EXPECT_NEAR(img[static_cast<std::size_t>(e.y1 * 28 + e.x1)], 1.0, 1e-5) << e.name;
    EXPECT_NEAR(img[static_cast<std::size_t>(e.y2 * 28 + e.x2)], e.v2, 1e-5) << e.name;
    double sum = 0;
    for (float v : img) sum += v;
    EXPECT_NEAR(sum, e.sum, 1e-3) << e.name;
  }
}

TEST_F(RealOmniglot, EpisodesOverTheRealData) {
  md::EpisodicSampler<float> episodes(*vinyals_train_, {.ways = 20, .shots = 5, .queries = 15});
  ml::Generator gen(1);
  const auto task = episodes.sample(gen);
  EXPECT_EQ(task.support_x.shape(), (ml::Shape{100, 1, 28, 28}));
  EXPECT_EQ(task.query_x.shape(), (ml::Shape{300, 1, 28, 28}));
  EXPECT_THROW(md::EpisodicSampler<float>(*vinyals_train_, {.ways = 5, .shots = 10, .queries = 11}),
               ml::ValueError);
}
