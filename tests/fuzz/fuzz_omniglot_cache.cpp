// libFuzzer target: the Omniglot cache reader, for a fixed key (two characters of 2 and
// 3 images of 4x4 pixels). The checksum that ends a cache file detects corruption, not
// forgery, so the input's last 8 bytes are replaced by the checksum of the rest: mutated
// files get past it and exercise the reader's own checks and its accepting path. The
// reader must never throw for a file's contents; what it accepts must match the key.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_input.hpp"
#include "metalearn/data/omniglot.hpp"

namespace {

namespace md = metalearn::data;

const md::detail::OmniglotCacheKey& key() {
  static const md::detail::OmniglotCacheKey k{
      4, 0x5EED0F0A11CE5EEDULL, {{"Alpha", "character01", 0, 2}, {"Beta", "character02", 2, 3}}};
  return k;
}

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> bytes(data, data + size);
  if (bytes.size() >= 8) {
    const std::uint64_t sum = md::detail::omniglot_cache_checksum({bytes.data(), bytes.size() - 8});
    std::memcpy(bytes.data() + bytes.size() - 8, &sum, 8);
  }
  const metalearn::fuzz::InputFile input("input.mlcache", bytes.data(), bytes.size());
  const auto folder = md::detail::read_omniglot_cache(input.path(), key());
  if (folder) {
    const auto& k = key();
    check(folder->characters.size() == k.characters.size());
    metalearn::Index images = 0;
    for (std::size_t i = 0; i < k.characters.size(); ++i) {
      const auto& got = folder->characters[i];
      const auto& want = k.characters[i];
      check(got.alphabet == want.alphabet && got.character == want.character &&
            got.first_image == images && got.num_images == want.num_images);
      images += got.num_images;
    }
    check(folder->pixels.size() == static_cast<std::size_t>(images * k.image_size * k.image_size));
    check(std::all_of(folder->pixels.begin(), folder->pixels.end(),
                      [](float v) { return v >= 0.0f && v <= 1.0f; }));
  }
  return 0;
}
