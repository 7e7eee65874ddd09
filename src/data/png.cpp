// PNG reading and writing through libpng's simplified API (which reports errors by
// return value, so no longjmp crosses C++ frames).

#include "metalearn/data/png.hpp"

#include <png.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

#include "metalearn/core/checked.hpp"
#include "metalearn/core/error.hpp"

namespace metalearn::data {

GrayImage read_png_gray(const std::filesystem::path& path, const PngReadOptions& options) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  METALEARN_CHECK(in.good(), IoError, "read_png_gray: cannot open '", path.string(), "'");
  const std::streamoff size = in.tellg();
  METALEARN_CHECK(size >= 0, IoError, "read_png_gray: cannot read '", path.string(), "'");
  std::vector<char> bytes(static_cast<std::size_t>(size));
  in.seekg(0);
  in.read(bytes.data(), size);
  METALEARN_CHECK(in.good() || size == 0, IoError, "read_png_gray: error while reading '",
                  path.string(), "'");
  METALEARN_CHECK(
      bytes.size() >= 8 && png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) == 0,
      IoError, "read_png_gray: '", path.string(), "' is not a PNG file (", bytes.size(),
      " bytes, no PNG signature)");

  // Reads the signature and every chunk up to the first IDAT (png_read_info): the
  // declared size is known before any pixel buffer exists.
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (png_image_begin_read_from_memory(&image, bytes.data(), bytes.size()) == 0) {
    const std::string msg = image.message;
    png_image_free(&image);
    ::metalearn::detail::throw_error<IoError>("read_png_gray: corrupt PNG '", path.string(),
                                              "': ", msg);
  }
  const std::uint64_t pixels =
      checked_mul<std::uint64_t>(image.width, image.height, "read_png_gray: width * height");
  if (pixels > options.max_pixels) {
    png_image_free(&image);
    ::metalearn::detail::throw_error<IoError>(
        "read_png_gray: '", path.string(), "' declares a ", image.width, "x", image.height,
        " image (", pixels, " pixels), more than the limit of ", options.max_pixels,
        " pixels (PngReadOptions::max_pixels)");
  }
  image.format = PNG_FORMAT_GRAY;
  GrayImage out;
  out.width = static_cast<Index>(image.width);
  out.height = static_cast<Index>(image.height);
  out.pixels.resize(checked_cast<std::size_t>(pixels, "read_png_gray: pixel count"));
  // Alpha (or tRNS) is composited onto this colour; for grey output libpng takes green.
  const png_color background{options.background, options.background, options.background};
  if (png_image_finish_read(&image, &background, out.pixels.data(), 0, nullptr) == 0) {
    const std::string msg = image.message;
    png_image_free(&image);
    ::metalearn::detail::throw_error<IoError>("read_png_gray: corrupt PNG '", path.string(),
                                              "': ", msg);
  }
  return out;
}

void write_png_gray(const std::filesystem::path& path, const GrayImage& image) {
  METALEARN_CHECK(image.width >= 1 && image.height >= 1 &&
                      static_cast<Index>(image.pixels.size()) == image.width * image.height,
                  ValueError, "write_png_gray: ", image.pixels.size(), " pixels for a ",
                  image.width, "x", image.height, " image ('", path.string(), "')");
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width);
  png.height = static_cast<png_uint_32>(image.height);
  png.format = PNG_FORMAT_GRAY;
  if (png_image_write_to_file(&png, path.string().c_str(), 0, image.pixels.data(), 0, nullptr) ==
      0) {
    const std::string msg = png.message;
    png_image_free(&png);
    ::metalearn::detail::throw_error<IoError>("write_png_gray: cannot write '", path.string(),
                                              "': ", msg);
  }
}

}  // namespace metalearn::data
