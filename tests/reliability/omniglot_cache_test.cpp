// The Omniglot cache: its checksum detects corruption, not forgery, so the reader's
// own checks must hold for a file whose checksum is right. A cache describing other
// files, or holding a pixel that no decoding gives (NaN, outside [0, 1]), is rebuilt.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "reliability/reliability.hpp"

namespace {

using reliability::read_bytes;
using reliability::write_bytes;
namespace ml = metalearn;
namespace md = metalearn::data;
namespace mdd = metalearn::data::detail;
namespace fs = std::filesystem;

mdd::OmniglotCacheKey test_key() {
  return {2, 42, {{"Alpha", "character01", 0, 2}, {"Beta", "character01", 2, 1}}};
}

md::OmniglotDataset::Folder test_folder() {
  md::OmniglotDataset::Folder f;
  f.characters = test_key().characters;
  for (int i = 0; i < 3 * 2 * 2; ++i) f.pixels.push_back(static_cast<float>(i) / 11.0f);
  return f;
}

/// `bytes` with its last 8 bytes replaced by the checksum of the others, as a forger
/// would write them.
std::string with_valid_checksum(std::string bytes) {
  const std::uint64_t sum = mdd::omniglot_cache_checksum(
      {reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size() - 8});
  std::memcpy(bytes.data() + bytes.size() - 8, &sum, 8);
  return bytes;
}

using OmniglotCache = reliability::ScratchDir;

TEST_F(OmniglotCache, WrittenCacheReadsBack) {
  const fs::path file = dir_ / "c.mlcache";
  ASSERT_TRUE(mdd::write_omniglot_cache(file, test_key(), test_folder()));
  const auto back = mdd::read_omniglot_cache(file, test_key());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->pixels, test_folder().pixels);
  ASSERT_EQ(back->characters.size(), 2u);
  EXPECT_EQ(back->characters[1].alphabet, "Beta");
  EXPECT_EQ(back->characters[1].first_image, 2);
  EXPECT_EQ(reliability::listing(dir_), (std::set<std::string>{"c.mlcache"}));
}

TEST_F(OmniglotCache, NanPixelUnderAValidChecksumIsRejected) {
  const fs::path file = dir_ / "c.mlcache";
  auto folder = test_folder();
  folder.pixels[5] = std::numeric_limits<float>::quiet_NaN();
  ASSERT_TRUE(mdd::write_omniglot_cache(file, test_key(), folder));  // checksum included
  EXPECT_FALSE(mdd::read_omniglot_cache(file, test_key()).has_value());
}

TEST_F(OmniglotCache, PixelOutsideZeroOneUnderAValidChecksumIsRejected) {
  const fs::path file = dir_ / "c.mlcache";
  for (const float bad : {1.5f, -0.25f, std::numeric_limits<float>::infinity()}) {
    auto folder = test_folder();
    folder.pixels.back() = bad;
    ASSERT_TRUE(mdd::write_omniglot_cache(file, test_key(), folder));
    EXPECT_FALSE(mdd::read_omniglot_cache(file, test_key()).has_value()) << bad;
  }
}

TEST_F(OmniglotCache, CacheOfAnotherKeyIsRejected) {
  const fs::path file = dir_ / "c.mlcache";
  ASSERT_TRUE(mdd::write_omniglot_cache(file, test_key(), test_folder()));
  auto other = test_key();
  other.fingerprint = 43;
  EXPECT_FALSE(mdd::read_omniglot_cache(file, other).has_value());
  other = test_key();
  other.characters[1].character = "character02";
  EXPECT_FALSE(mdd::read_omniglot_cache(file, other).has_value());
  other = test_key();
  other.characters[1].num_images = 2;
  EXPECT_FALSE(mdd::read_omniglot_cache(file, other).has_value());
  other = test_key();
  other.image_size = 3;
  EXPECT_FALSE(mdd::read_omniglot_cache(file, other).has_value());
}

TEST_F(OmniglotCache, ForgedLengthsUnderAValidChecksumAreRejected) {
  const fs::path file = dir_ / "c.mlcache";
  ASSERT_TRUE(mdd::write_omniglot_cache(file, test_key(), test_folder()));
  const std::string good = read_bytes(file);
  // The first name's length (just after the 56-byte header) claims 2^32 - 1 bytes, then
  // 5000 (over the 4096 limit), then the file loses or gains a pixel.
  for (const std::uint32_t len : {0xFFFFFFFFu, 5000u}) {
    std::string bad = good;
    std::memcpy(bad.data() + 56, &len, 4);
    write_bytes(file, with_valid_checksum(bad));
    EXPECT_FALSE(mdd::read_omniglot_cache(file, test_key()).has_value()) << len;
  }
  std::string shorter = good;
  shorter.erase(shorter.size() - 12, 4);
  write_bytes(file, with_valid_checksum(shorter));
  EXPECT_FALSE(mdd::read_omniglot_cache(file, test_key()).has_value());
  std::string longer = good;
  longer.insert(longer.size() - 8, 4, '\0');
  write_bytes(file, with_valid_checksum(longer));
  EXPECT_FALSE(mdd::read_omniglot_cache(file, test_key()).has_value());
  write_bytes(file, good);
  EXPECT_TRUE(mdd::read_omniglot_cache(file, test_key()).has_value());
}

TEST_F(OmniglotCache, DatasetRebuildsAForgedCache) {
  const fs::path root = dir_ / "omniglot";
  const fs::path dir = root / "images_background" / "Alpha" / "character01";
  fs::create_directories(dir);
  md::GrayImage img{105, 105, std::vector<std::uint8_t>(105 * 105, 255)};
  for (std::size_t i = 0; i < 105 * 30; ++i) img.pixels[i] = 0;  // ink on the top rows
  md::write_png_gray(dir / "a_01.png", img);
  const md::OmniglotOptions options{
      .root = root, .split = md::OmniglotSplit::kBackground, .cache_dir = dir_ / "cache"};
  const md::OmniglotDataset first(options);
  ASSERT_EQ(first.cache_files().size(), 1u);
  const fs::path cache = first.cache_files()[0];
  const std::string good = read_bytes(cache);
  // The first pixel (the last 28 * 28 floats before the checksum) becomes NaN.
  std::string forged = good;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(forged.data() + forged.size() - 8 - 28 * 28 * 4, &nan, 4);
  write_bytes(cache, with_valid_checksum(forged));

  const md::OmniglotDataset second(options);
  EXPECT_FALSE(second.loaded_from_cache());
  std::vector<float> px(28 * 28);
  second.load(0, 0, px);
  EXPECT_FLOAT_EQ(px[0], 1.0f);
  EXPECT_EQ(read_bytes(cache), good);  // rewritten from the PNG
}

}  // namespace
