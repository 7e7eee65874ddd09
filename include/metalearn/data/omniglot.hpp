#pragma once
/// @file
/// OmniglotDataset: the Omniglot characters (Lake et al.\ 2015) from the original PNG layout.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "metalearn/core/export.hpp"
#include "metalearn/core/shape.hpp"
#include "metalearn/data/class_dataset.hpp"

namespace metalearn::data {

/// Which characters an OmniglotDataset exposes.
///
/// - `vinyals_train` / `vinyals_test`: the protocol of Vinyals et al. (2016). All 1623
///   characters of images_background and images_evaluation are sorted by
///   "<alphabet>/<character>" (byte-wise string order); the first 1200 are meta-training
///   characters, the remaining 423 meta-test characters. Deterministic and independent
///   of the file system's listing order.
/// - `background` / `evaluation`: the original split of Lake et al.: the 964 characters
///   (30 alphabets) of images_background and the 659 characters (20 alphabets) of
///   images_evaluation, each sorted by "<alphabet>/<character>".
/// - `all`: all 1623 characters in the sorted order.
enum class OmniglotSplit { kVinyalsTrain, kVinyalsTest, kBackground, kEvaluation, kAll };

/// Options of OmniglotDataset (designated-initializer friendly).
struct OmniglotOptions {
  /// Folder holding images_background/ and images_evaluation/. Empty: the
  /// METALEARN_OMNIGLOT_DIR environment variable.
  std::filesystem::path root = {};
  OmniglotSplit split = OmniglotSplit::kVinyalsTrain;
  /// When true every character gives 4 classes, rotated by 0, 90, 180 and 270 degrees
  /// counter-clockwise: class 4*k + r is character k rotated by r*90 degrees.
  bool rotations = false;
  /// Images are resized from 105x105 to image_size x image_size by area averaging.
  Index image_size = 28;
  /// Folder of the binary cache. Empty: METALEARN_CACHE_DIR if set, else the data folder
  /// itself when writable, else `<system temp dir>/metalearn_cache`.
  std::filesystem::path cache_dir = {};
  /// false: always decode the PNGs and never read or write a cache.
  bool use_cache = true;
  /// Threads decoding PNGs on the first load (0: std::thread::hardware_concurrency()).
  int threads = 0;
};

/// Omniglot as a ClassDataset of [1, S, S] images.
///
/// Pixel convention: the PNGs have black strokes on white; they are inverted so that ink
/// is 1.0 and background 0.0, then area-averaged to S x S (S = image_size, default 28;
/// each output pixel is the mean of the source area it covers, with fractional weights
/// at the borders), so values lie in [0, 1]. The 20 drawings of a character (the files
/// ending in ".png", in any letter case) are sorted by file name.
///
/// Cache: each source folder (images_background, images_evaluation) is decoded once into
/// a binary file "omniglot_<folder>_<S>px.mlcache" (magic, version, image sizes, counts,
/// a fingerprint of the source files (relative paths, sizes, modification times), then
/// names and float pixels, then a checksum of everything before it). Later loads read it
/// after checking magic, version, sizes, fingerprint, names, file length, checksum and
/// that every pixel is in [0, 1]; a stale, truncated or corrupt cache is rebuilt, never
/// used. Caches are written to a temporary file and renamed into place, so concurrent
/// loaders never see a partial file.
///
/// @throws IoError naming the folder or file when a folder is missing, a character folder
/// holds no PNG, or a PNG is unreadable, corrupt or not 105x105.
///
/// @code
/// data::OmniglotDataset train({.split = data::OmniglotSplit::kVinyalsTrain, .rotations = true});
/// data::EpisodicSampler<float> episodes(train, {.ways = 5, .shots = 1, .queries = 15});
/// @endcode
class METALEARN_API OmniglotDataset final : public ClassDataset {
 public:
  /// Size of the original images.
  static constexpr Index kSourceSize = 105;

  explicit OmniglotDataset(OmniglotOptions options = {});

  [[nodiscard]] Index num_classes() const override;
  [[nodiscard]] Index examples_per_class(Index c) const override;
  [[nodiscard]] Shape example_shape() const override {
    return Shape{1, options_.image_size, options_.image_size};
  }
  void load(Index c, Index i, std::span<float> out) const override;
  [[nodiscard]] std::string name() const override;

  /// Number of characters (classes without rotation).
  [[nodiscard]] Index num_characters() const { return static_cast<Index>(characters_.size()); }
  /// Number of distinct alphabets among the characters.
  [[nodiscard]] Index num_alphabets() const;
  /// Total number of images (without rotation copies).
  [[nodiscard]] Index num_images() const;
  /// "<alphabet>/<character>" of class `c`.
  [[nodiscard]] std::string class_name(Index c) const;
  /// The character and rotation (0..3, quarter turns counter-clockwise) of class `c`.
  [[nodiscard]] Index character_of(Index c) const;
  [[nodiscard]] int rotation_of(Index c) const;

  /// The same data seen through another split or rotation setting, sharing the decoded
  /// images (no file is read). Load OmniglotSplit::kAll once and derive the splits from it.
  /// @throws ValueError when the split needs a folder this dataset did not load.
  [[nodiscard]] OmniglotDataset with_split(OmniglotSplit split, bool rotations) const;

  /// True when every folder came from a valid cache (nothing decoded).
  [[nodiscard]] bool loaded_from_cache() const { return from_cache_; }
  /// The cache files used or written (empty when use_cache is false).
  [[nodiscard]] const std::vector<std::filesystem::path>& cache_files() const {
    return cache_files_;
  }
  [[nodiscard]] const OmniglotOptions& options() const { return options_; }

  /// One folder of Omniglot decoded into memory (an implementation detail, public so the
  /// loader in src/ can build it).
  struct Folder {
    struct Character {
      std::string alphabet;
      std::string character;
      Index first_image = 0;
      Index num_images = 0;
    };
    std::vector<Character> characters;
    std::vector<float> pixels;  ///< num_images * S * S, ink = 1
  };

 private:
  struct CharacterRef {
    const Folder* folder;
    std::size_t index;
  };
  [[nodiscard]] const Folder::Character& character(Index k) const;
  [[nodiscard]] Index check_class(Index c, const char* fn) const;
  void select_characters();

  OmniglotOptions options_;
  std::vector<std::shared_ptr<const Folder>> folders_;
  std::vector<std::string> folder_names_;  // images_background / images_evaluation
  std::vector<CharacterRef> characters_;
  std::vector<std::filesystem::path> cache_files_;
  bool from_cache_ = true;
};

namespace detail {

/// What an Omniglot cache file must describe to be used: the image size, the fingerprint
/// of the source files, and every character (alphabet, name, first image, image count) in
/// order. Internal; public for the cache reader's fuzz target.
struct OmniglotCacheKey {
  Index image_size = 0;
  std::uint64_t fingerprint = 0;
  std::vector<OmniglotDataset::Folder::Character> characters;
};

/// The cache file at `path` (format under OmniglotDataset), or nullopt when it is missing,
/// describes another key, or is truncated or corrupt (lengths, checksum, or a pixel value
/// that is not in [0, 1]). Never throws for the contents of the file.
METALEARN_API std::optional<OmniglotDataset::Folder> read_omniglot_cache(
    const std::filesystem::path& path, const OmniglotCacheKey& key);

/// Writes `folder` as the cache of `key` at `path`, through a temporary file renamed into
/// place. Returns false on any failure (nothing is left behind then).
METALEARN_API bool write_omniglot_cache(const std::filesystem::path& path,
                                        const OmniglotCacheKey& key,
                                        const OmniglotDataset::Folder& folder);

/// The checksum that ends a cache file, of all the bytes before it. It detects corruption,
/// not tampering: the reader's other checks do not rely on it.
METALEARN_API std::uint64_t omniglot_cache_checksum(std::span<const std::uint8_t> bytes);

}  // namespace detail
}  // namespace metalearn::data
