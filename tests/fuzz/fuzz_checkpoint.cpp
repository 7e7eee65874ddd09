// libFuzzer target: the training checkpoint loader.

#include <cstddef>
#include <cstdint>

#include "fuzz_input.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/io/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const metalearn::fuzz::InputFile input("input.ckpt", data, size);
  try {
    const auto c = metalearn::io::load_checkpoint<float>(input.path());
    double sum = 0.0;
    for (const auto& [name, t] : c.parameters) {
      for (metalearn::Index i = 0; i < t.numel(); ++i) sum += static_cast<double>(t.data()[i]);
    }
    if (c.optimizer) {
      for (const auto& [name, t] : c.optimizer->buffers) {
        for (metalearn::Index i = 0; i < t.numel(); ++i) sum += static_cast<double>(t.data()[i]);
      }
    }
    static_cast<void>(sum);
  } catch (const metalearn::Error&) {
  }
  return 0;
}
