// libFuzzer target: the PNG reader (any colour type to 8-bit grey).

#include <cstddef>
#include <cstdint>

#include "fuzz_input.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/data/png.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const metalearn::fuzz::InputFile input("input.png", data, size);
  try {
    const auto image = metalearn::data::read_png_gray(input.path());
    if (image.pixels.size() != static_cast<std::size_t>(image.width * image.height)) {
      __builtin_trap();  // a decoded image must hold width * height pixels
    }
  } catch (const metalearn::Error&) {
  }
  return 0;
}
