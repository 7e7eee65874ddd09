#pragma once
// 8-bit greyscale PNG reading and writing (libpng, linked privately).

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

/// Reads a PNG of any colour type, converted to 8-bit grey.
/// @throws IoError naming `path` when it is missing, unreadable, not a PNG or corrupt.
METALEARN_API GrayImage read_png_gray(const std::filesystem::path& path);

/// Writes `image` as an 8-bit greyscale PNG.
/// @throws ValueError when the pixel count does not match width*height;
/// @throws IoError naming `path` when it cannot be written.
METALEARN_API void write_png_gray(const std::filesystem::path& path, const GrayImage& image);

}  // namespace metalearn::data
