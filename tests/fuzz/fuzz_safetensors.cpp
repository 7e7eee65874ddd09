// libFuzzer target: the safetensors reader, in float and double.

#include <cstddef>
#include <cstdint>

#include "fuzz_input.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const metalearn::fuzz::InputFile input("input.safetensors", data, size);
  try {
    const auto [f, metadata] = metalearn::io::load_safetensors_file<float>(input.path());
    const auto d = metalearn::io::load_safetensors<double>(input.path());
    // Whatever loads must be whole: every element of every tensor readable.
    double sum = 0.0;
    for (const auto& [name, t] : f) {
      for (metalearn::Index i = 0; i < t.numel(); ++i) sum += static_cast<double>(t.data()[i]);
    }
    for (const auto& [name, t] : d) {
      for (metalearn::Index i = 0; i < t.numel(); ++i) sum += t.data()[i];
    }
    static_cast<void>(sum);
  } catch (const metalearn::Error&) {
  }
  return 0;
}
