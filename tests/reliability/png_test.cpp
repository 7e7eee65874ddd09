// PNG decoding: transparency is composited onto white paper (not onto zero, which
// is ink), a header declaring a huge image is rejected by its header before any
// pixel buffer is allocated, and a dataset's ".PNG" files are not skipped.
#include <png.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "reliability/reliability.hpp"

namespace {

using reliability::expect_error;
using reliability::read_bytes;
using reliability::write_bytes;
namespace ml = metalearn;
namespace md = metalearn::data;
namespace fs = std::filesystem;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

constexpr ml::Index kSrc = md::OmniglotDataset::kSourceSize;

/// Writes a PNG of `format` (a libpng simplified-API PNG_FORMAT_*) from `pixels`, and
/// for a colour-mapped format from `colormap`.
void write_png(const fs::path& path, ml::Index width, ml::Index height, png_uint_32 format,
               const std::vector<std::uint8_t>& pixels,
               const std::vector<std::uint8_t>& colormap = {}) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = format;
  image.colormap_entries = static_cast<png_uint_32>(colormap.size() / 4);
  ASSERT_EQ(pixels.size(), PNG_IMAGE_SIZE(image));
  ASSERT_NE(png_image_write_to_file(&image, path.string().c_str(), 0, pixels.data(), 0,
                                    colormap.empty() ? nullptr : colormap.data()),
            0)
      << image.message;
}

/// True inside the 30x30 ink square of the test drawings (900 of 105 * 105 pixels).
bool ink_at(ml::Index y, ml::Index x) {
  return y >= 20 && y < 50 && x >= 40 && x < 70;
}
constexpr double kInkFraction = 900.0 / (105.0 * 105.0);  // 0.0816

/// A 105x105 drawing as `channels`-sample pixels: `ink` inside the square, `paper`
/// elsewhere.
std::vector<std::uint8_t> drawing(const std::vector<std::uint8_t>& ink,
                                  const std::vector<std::uint8_t>& paper) {
  std::vector<std::uint8_t> out;
  for (ml::Index y = 0; y < kSrc; ++y) {
    for (ml::Index x = 0; x < kSrc; ++x) {
      const auto& px = ink_at(y, x) ? ink : paper;
      out.insert(out.end(), px.begin(), px.end());
    }
  }
  return out;
}

/// The 8-bit file's IHDR width and height replaced (and its CRC recomputed), so that
/// it declares a `width` x `height` image without holding its pixels.
std::string with_declared_size(std::string png, std::uint32_t width, std::uint32_t height) {
  // signature (8), IHDR length (4), "IHDR" (4), width (4), height (4), ... 13 bytes, CRC.
  auto put32 = [&](std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
      png[at + static_cast<std::size_t>(i)] = static_cast<char>(v >> (24 - 8 * i));
  };
  put32(16, width);
  put32(20, height);
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 12; i < 12 + 4 + 13; ++i) {
    crc ^= static_cast<std::uint8_t>(png[i]);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  put32(29, crc ^ 0xFFFFFFFFu);
  return png;
}

/// The mean of the first drawing of the Omniglot layout at `root` (decoded, no cache).
double omniglot_mean(const fs::path& root) {
  md::OmniglotDataset ds(
      {.root = root, .split = md::OmniglotSplit::kBackground, .use_cache = false, .threads = 1});
  std::vector<float> out(28 * 28);
  ds.load(0, 0, out);
  return std::accumulate(out.begin(), out.end(), 0.0) / static_cast<double>(out.size());
}

/// Reads `file` in a process whose address space may grow by 64 MiB only (for a death
/// test's child); exits 0 when that throws IoError, 1 on any other exception (such as
/// std::bad_alloc from a buffer of the declared size), 2 when the read succeeds.
[[noreturn]] void read_in_small_address_space(const fs::path& file) {
  std::ifstream statm("/proc/self/statm");
  unsigned long long pages = 0;
  statm >> pages;
  const auto used = static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE));
  const rlimit limit{used + (rlim_t{64} << 20), used + (rlim_t{64} << 20)};
  if (setrlimit(RLIMIT_AS, &limit) != 0) std::_Exit(3);
  try {
    (void)md::read_png_gray(file);
  } catch (const ml::IoError&) {
    std::_Exit(0);
  } catch (...) {
    std::_Exit(1);
  }
  std::_Exit(2);
}

class PngFiles : public reliability::ScratchDir {
 protected:
  /// The folder of the single character of an Omniglot layout under dir_/omniglot.
  fs::path character_dir() {
    const fs::path dir = dir_ / "omniglot" / "images_background" / "Alpha" / "character01";
    fs::create_directories(dir);
    return dir;
  }
  fs::path omniglot_root() const { return dir_ / "omniglot"; }

  /// Expects `file` to read as the test drawing: ink (0) in the square, white elsewhere.
  static void expect_drawing_on_white(const fs::path& file) {
    const md::GrayImage img = md::read_png_gray(file);
    ASSERT_EQ(img.width, kSrc);
    ASSERT_EQ(img.height, kSrc);
    for (ml::Index y = 0; y < kSrc; ++y) {
      for (ml::Index x = 0; x < kSrc; ++x) {
        ASSERT_EQ(img.pixels[static_cast<std::size_t>(y * kSrc + x)], ink_at(y, x) ? 0 : 255)
            << "at (" << y << ", " << x << ") of " << file;
      }
    }
  }
};

TEST_F(PngFiles, RgbaWithTransparentBackgroundReadsAsWhitePaper) {
  // Transparent black background: composited onto a zero buffer it was all ink.
  const fs::path file = character_dir() / "a_01.png";
  write_png(file, kSrc, kSrc, PNG_FORMAT_RGBA, drawing({0, 0, 0, 255}, {0, 0, 0, 0}));
  expect_drawing_on_white(file);
  EXPECT_NEAR(omniglot_mean(omniglot_root()), kInkFraction, 1e-6);
}

TEST_F(PngFiles, GrayAlphaWithTransparentBackgroundReadsAsWhitePaper) {
  const fs::path file = character_dir() / "a_01.png";
  write_png(file, kSrc, kSrc, PNG_FORMAT_GA, drawing({0, 255}, {0, 0}));
  expect_drawing_on_white(file);
  EXPECT_NEAR(omniglot_mean(omniglot_root()), kInkFraction, 1e-6);
}

TEST_F(PngFiles, PaletteWithTransparentEntryReadsAsWhitePaper) {
  // Entry 0: transparent black (tRNS), entry 1: opaque black.
  const fs::path file = character_dir() / "a_01.png";
  write_png(file, kSrc, kSrc, PNG_FORMAT_RGBA_COLORMAP, drawing({1}, {0}),
            {0, 0, 0, 0, 0, 0, 0, 255});
  expect_drawing_on_white(file);
  EXPECT_NEAR(omniglot_mean(omniglot_root()), kInkFraction, 1e-6);
}

TEST_F(PngFiles, TransparencyIsCompositedOntoTheChosenBackground) {
  const fs::path file = dir_ / "rgba.png";
  write_png(file, 2, 1, PNG_FORMAT_RGBA, {0, 0, 0, 0, 255, 255, 255, 255});
  EXPECT_EQ(md::read_png_gray(file).pixels, (std::vector<std::uint8_t>{255, 255}));
  EXPECT_EQ(md::read_png_gray(file, {.background = 0}).pixels, (std::vector<std::uint8_t>{0, 255}));
  EXPECT_EQ(md::read_png_gray(file, {.background = 100}).pixels,
            (std::vector<std::uint8_t>{100, 255}));
}

TEST_F(PngFiles, OpaqueImagesAreUnchanged) {
  const fs::path file = dir_ / "gray.png";
  write_png(file, 3, 1, PNG_FORMAT_GRAY, {0, 128, 255});
  EXPECT_EQ(md::read_png_gray(file).pixels, (std::vector<std::uint8_t>{0, 128, 255}));
}

TEST_F(PngFiles, HugeDeclaredSizeIsRejectedNamingFileAndSize) {
  const fs::path small = dir_ / "small.png";
  write_png(small, 4, 4, PNG_FORMAT_GRAY, std::vector<std::uint8_t>(16, 255));
  const fs::path file = dir_ / "huge.png";
  write_bytes(file, with_declared_size(read_bytes(small), 30000, 30000));
  ASSERT_LT(fs::file_size(file), 1000u);
  expect_error<ml::IoError>([&] { (void)md::read_png_gray(file); }, file.string());
  expect_error<ml::IoError>([&] { (void)md::read_png_gray(file); },
                            "declares a 30000x30000 image (900000000 pixels)");
  expect_error<ml::IoError>([&] { (void)md::read_png_gray(file); }, "limit of 67108864 pixels");
}

TEST_F(PngFiles, HugeDeclaredSizeIsRejectedBeforeAllocatingIt) {
  if (kSanitized) GTEST_SKIP() << "sanitizers reserve more address space than the limit allows";
  const fs::path small = dir_ / "small.png";
  write_png(small, 4, 4, PNG_FORMAT_GRAY, std::vector<std::uint8_t>(16, 255));
  const fs::path file = dir_ / "huge.png";
  write_bytes(file, with_declared_size(read_bytes(small), 30000, 30000));
  // A 900 MB pixel buffer would fail there with std::bad_alloc instead of the IoError.
  EXPECT_EXIT(read_in_small_address_space(file), ::testing::ExitedWithCode(0), "");
}

TEST_F(PngFiles, LimitIsAnOption) {
  const fs::path file = dir_ / "gray.png";
  write_png(file, 10, 10, PNG_FORMAT_GRAY, std::vector<std::uint8_t>(100, 7));
  expect_error<ml::IoError>([&] { (void)md::read_png_gray(file, {.max_pixels = 99}); },
                            "declares a 10x10 image (100 pixels), more than the limit of 99");
  EXPECT_EQ(md::read_png_gray(file, {.max_pixels = 100}).pixels.size(), 100u);
}

TEST_F(PngFiles, OmniglotRejectsAHugeDrawingNamingFileAndSize) {
  const fs::path small = dir_ / "small.png";
  write_png(small, 4, 4, PNG_FORMAT_GRAY, std::vector<std::uint8_t>(16, 255));
  const fs::path file = character_dir() / "a_01.png";
  write_bytes(file, with_declared_size(read_bytes(small), 30000, 30000));
  for (const std::string& needle : {file.string(), std::string("30000x30000")}) {
    expect_error<ml::IoError>([&] { (void)omniglot_mean(omniglot_root()); }, needle);
  }
}

TEST_F(PngFiles, OmniglotRejectsADrawingLargerThanTheSourceSize) {
  // Beyond 105 * 105 pixels it is rejected from the header, like any oversized PNG.
  const fs::path file = character_dir() / "a_01.png";
  write_png(file, 200, 200, PNG_FORMAT_GRAY, std::vector<std::uint8_t>(200 * 200, 255));
  expect_error<ml::IoError>([&] { (void)omniglot_mean(omniglot_root()); }, "200x200");
  expect_error<ml::IoError>([&] { (void)omniglot_mean(omniglot_root()); }, file.string());
}

TEST_F(PngFiles, OmniglotListsUpperCaseExtensions) {
  const fs::path dir = character_dir();
  const std::vector<std::uint8_t> white(static_cast<std::size_t>(kSrc * kSrc), 255);
  write_png(dir / "a_01.png", kSrc, kSrc, PNG_FORMAT_GRAY, white);
  write_png(dir / "a_02.PNG", kSrc, kSrc, PNG_FORMAT_GRAY, drawing({0}, {255}));
  write_png(dir / "a_03.Png", kSrc, kSrc, PNG_FORMAT_GRAY, white);
  write_bytes(dir / "notes.txt", "not an image");
  write_bytes(dir / "a_04.pngx", "not an image either");
  md::OmniglotDataset ds(
      {.root = omniglot_root(), .split = md::OmniglotSplit::kBackground, .use_cache = false});
  ASSERT_EQ(ds.examples_per_class(0), 3);
  std::vector<float> out(28 * 28);
  ds.load(0, 1, out);  // a_02.PNG, sorted between a_01.png and a_03.Png
  EXPECT_NEAR(std::accumulate(out.begin(), out.end(), 0.0) / static_cast<double>(out.size()),
              kInkFraction, 1e-6);
}

TEST_F(PngFiles, OmniglotNamesAnUnreadableUpperCaseFile) {
  const fs::path file = character_dir() / "a_01.PNG";
  write_bytes(file, "GIF89a");
  expect_error<ml::IoError>([&] { (void)omniglot_mean(omniglot_root()); }, file.string());
}

}  // namespace
