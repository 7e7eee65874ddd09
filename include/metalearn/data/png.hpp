#pragma once
/// @file
/// 8-bit greyscale PNG reading and writing (libpng, linked privately).

#include <cstdint>
#include <filesystem>
#include <vector>

#include "metalearn/core/export.hpp"
#include "metalearn/core/shape.hpp"

namespace metalearn::data {

/// An 8-bit greyscale image, row-major, 0 = black and 255 = white.
struct GrayImage {
  Index width = 0;
  Index height = 0;
  std::vector<std::uint8_t> pixels;
};

/// The largest image read_png_gray decodes by default, in pixels (width * height):
/// 2^26, for instance 8192 x 8192 (64 MiB of grey).
inline constexpr std::uint64_t kMaxPngPixels = std::uint64_t{1} << 26;

/// Options of read_png_gray (designated-initializer friendly).
struct PngReadOptions {
  /// The grey level that transparent pixels (an alpha channel, or a tRNS chunk in a
  /// grey, RGB or palette image) are composited onto. 255: white paper, as in scanned
  /// drawings such as Omniglot's.
  std::uint8_t background = 255;
  /// The largest width * height accepted. The header is read first, so a file declaring
  /// a larger image is rejected before any pixel buffer is allocated.
  std::uint64_t max_pixels = kMaxPngPixels;
};

/// Reads a PNG of any colour type, converted to 8-bit grey; transparency is composited
/// onto `options.background`.
/// @throws IoError naming `path` when it is missing, unreadable, not a PNG or corrupt, and
/// naming `path` and the declared width x height when that exceeds `options.max_pixels`.
METALEARN_API GrayImage read_png_gray(const std::filesystem::path& path,
                                      const PngReadOptions& options = {});

/// Writes `image` as an 8-bit greyscale PNG.
/// @throws ValueError when the pixel count does not match width*height;
/// @throws IoError naming `path` when it cannot be written.
METALEARN_API void write_png_gray(const std::filesystem::path& path, const GrayImage& image);

}  // namespace metalearn::data
