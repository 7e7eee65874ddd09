// OmniglotDataset: folder walk, PNG decoding, area-average resizing and the binary cache.

#include "metalearn/data/omniglot.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "metalearn/core/checked.hpp"
#include "metalearn/core/error.hpp"
#include "metalearn/core/random.hpp"
#include "metalearn/core/thread_pool.hpp"
#include "metalearn/data/png.hpp"

namespace metalearn::data {
namespace {

namespace fs = std::filesystem;
using Folder = OmniglotDataset::Folder;

constexpr char kMagic[8] = {'M', 'L', 'O', 'M', 'N', 'I', 'G', 'L'};
constexpr std::uint32_t kVersion = 1;
constexpr const char* kBackground = "images_background";
constexpr const char* kEvaluation = "images_evaluation";

/// A 64-bit streaming hash (SplitMix64 over 8-byte words). Not cryptographic: it detects
/// corruption and changes, not tampering.
class Hasher {
 public:
  void update(const void* data, std::size_t len) {
    const auto* p = static_cast<const unsigned char*>(data);
    total_ += len;
    if (pending_ > 0) {
      const std::size_t take = std::min(len, 8 - pending_);
      std::memcpy(buf_ + pending_, p, take);
      pending_ += take;
      p += take;
      len -= take;
      if (pending_ < 8) return;
      flush_buffer();
    }
    while (len >= 8) {
      std::uint64_t w = 0;
      std::memcpy(&w, p, 8);
      h_ = mix64(h_ ^ w);
      p += 8;
      len -= 8;
    }
    std::memcpy(buf_, p, len);
    pending_ = len;
  }
  void update_string(const std::string& s) {
    const auto n = static_cast<std::uint64_t>(s.size());
    update(&n, sizeof n);
    update(s.data(), s.size());
  }
  template <class V>
  void update_value(V v) {
    update(&v, sizeof v);
  }
  [[nodiscard]] std::uint64_t digest() const {
    std::uint64_t h = h_;
    if (pending_ > 0) {
      unsigned char tail[8] = {};
      std::memcpy(tail, buf_, pending_);
      std::uint64_t w = 0;
      std::memcpy(&w, tail, 8);
      h = mix64(h ^ w);
    }
    return mix64(h ^ mix64(total_));
  }

 private:
  void flush_buffer() {
    std::uint64_t w = 0;
    std::memcpy(&w, buf_, 8);
    h_ = mix64(h_ ^ w);
    pending_ = 0;
  }
  std::uint64_t h_ = 0x243F6A8885A308D3ULL;
  std::uint64_t total_ = 0;
  unsigned char buf_[8] = {};
  std::size_t pending_ = 0;
};

/// The PNG files of one source folder, sorted, with a fingerprint of the listing.
struct Listing {
  struct Character {
    std::string alphabet;
    std::string character;
    std::vector<fs::path> files;
  };
  std::vector<Character> characters;
  std::uint64_t fingerprint = 0;
  std::uint64_t file_count = 0;
};

/// True for a file name ending in ".png" in any letter case (".PNG" from some scanners and
/// file systems).
bool is_png_name(const fs::path& file) {
  const std::string ext = file.extension().string();
  return ext.size() == 4 && ext[0] == '.' && (ext[1] == 'p' || ext[1] == 'P') &&
         (ext[2] == 'n' || ext[2] == 'N') && (ext[3] == 'g' || ext[3] == 'G');
}

std::vector<fs::path> sorted_children(const fs::path& dir, bool directories) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const bool is_dir = it->is_directory(ec);
    if (directories && is_dir) out.push_back(it->path());
    if (!directories && !is_dir && is_png_name(it->path())) out.push_back(it->path());
  }
  METALEARN_CHECK(!ec, IoError, "OmniglotDataset: cannot list '", dir.string(),
                  "': ", ec.message());
  std::sort(out.begin(), out.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
  return out;
}

Listing list_folder(const fs::path& folder) {
  std::error_code ec;
  METALEARN_CHECK(fs::is_directory(folder, ec), IoError, "OmniglotDataset: folder '",
                  folder.string(), "' does not exist or is not a directory");
  Listing listing;
  Hasher h;
  for (const fs::path& alphabet : sorted_children(folder, true)) {
    for (const fs::path& character : sorted_children(alphabet, true)) {
      Listing::Character c{alphabet.filename().string(), character.filename().string(),
                           sorted_children(character, false)};
      METALEARN_CHECK(!c.files.empty(), IoError, "OmniglotDataset: character folder '",
                      character.string(), "' holds no PNG image");
      for (const fs::path& f : c.files) {
        h.update_string(c.alphabet + "/" + c.character + "/" + f.filename().string());
        // One stat per file: size and modification time (nanoseconds).
        struct stat st {};
        const bool ok = ::stat(f.c_str(), &st) == 0;
        h.update_value(static_cast<std::int64_t>(ok ? st.st_size : -1));
        h.update_value(static_cast<std::int64_t>(ok ? st.st_mtim.tv_sec : 0));
        h.update_value(static_cast<std::int64_t>(ok ? st.st_mtim.tv_nsec : 0));
      }
      listing.file_count += c.files.size();
      listing.characters.push_back(std::move(c));
    }
  }
  METALEARN_CHECK(!listing.characters.empty(), IoError, "OmniglotDataset: folder '",
                  folder.string(), "' holds no <alphabet>/<character> folders");
  listing.fingerprint = h.digest();
  return listing;
}

/// Area-averaging weights from n source pixels to m output pixels: output o covers the
/// source interval [o*n/m, (o+1)*n/m); source pixel p gets weight |overlap| * m / n.
struct AreaWeights {
  std::vector<Index> first;                 // first source pixel of each output
  std::vector<std::vector<double>> weight;  // weights of the source pixels from `first`
};

AreaWeights area_weights(Index n, Index m) {
  AreaWeights w;
  const double scale = static_cast<double>(n) / static_cast<double>(m);
  for (Index o = 0; o < m; ++o) {
    const double lo = static_cast<double>(o) * scale;
    const double hi = static_cast<double>(o + 1) * scale;
    const auto p0 = static_cast<Index>(std::floor(lo));
    const auto p1 = std::min<Index>(n - 1, static_cast<Index>(std::ceil(hi)) - 1);
    w.first.push_back(p0);
    std::vector<double> ws;
    for (Index p = p0; p <= p1; ++p) {
      const double overlap =
          std::min(hi, static_cast<double>(p + 1)) - std::max(lo, static_cast<double>(p));
      ws.push_back(std::max(0.0, overlap) / scale);
    }
    w.weight.push_back(std::move(ws));
  }
  return w;
}

/// Decodes one PNG, inverts it (ink = 1) and resizes it into `out` (size*size values).
void decode_into(const fs::path& file, const AreaWeights& w, Index size, float* out) {
  constexpr Index n = OmniglotDataset::kSourceSize;
  // A larger declared size is rejected from the header, before any pixel buffer exists.
  const GrayImage img = read_png_gray(file, {.max_pixels = static_cast<std::uint64_t>(n * n)});
  METALEARN_CHECK(img.width == n && img.height == n, IoError, "OmniglotDataset: '", file.string(),
                  "' is ", img.width, "x", img.height, ", expected ", n, "x", n);
  std::vector<double> rows(static_cast<std::size_t>(size * n), 0.0);  // size x n
  for (Index o = 0; o < size; ++o) {
    const auto& ws = w.weight[static_cast<std::size_t>(o)];
    const Index p0 = w.first[static_cast<std::size_t>(o)];
    for (std::size_t k = 0; k < ws.size(); ++k) {
      const std::uint8_t* src = img.pixels.data() + (p0 + static_cast<Index>(k)) * n;
      double* dst = rows.data() + o * n;
      for (Index x = 0; x < n; ++x) dst[x] += ws[k] * (1.0 - src[x] / 255.0);
    }
  }
  for (Index o = 0; o < size; ++o) {
    for (Index q = 0; q < size; ++q) {
      const auto& ws = w.weight[static_cast<std::size_t>(q)];
      const Index p0 = w.first[static_cast<std::size_t>(q)];
      double acc = 0.0;
      for (std::size_t k = 0; k < ws.size(); ++k)
        acc += ws[k] * rows[static_cast<std::size_t>(o * n + p0 + static_cast<Index>(k))];
      out[o * size + q] = static_cast<float>(acc);
    }
  }
}

Folder decode_folder(const Listing& listing, Index size, int threads) {
  Folder folder;
  std::vector<const fs::path*> files;
  for (const auto& c : listing.characters) {
    folder.characters.push_back({c.alphabet, c.character, static_cast<Index>(files.size()),
                                 static_cast<Index>(c.files.size())});
    for (const auto& f : c.files) files.push_back(&f);
  }
  const std::size_t per = static_cast<std::size_t>(size * size);
  folder.pixels.resize(files.size() * per);
  const AreaWeights w = area_weights(OmniglotDataset::kSourceSize, size);
  std::size_t nthreads = threads > 0 ? static_cast<std::size_t>(threads)
                                     : std::max(1U, std::thread::hardware_concurrency());
  nthreads = std::min(nthreads, std::max<std::size_t>(1, files.size()));
  std::vector<std::exception_ptr> errors(nthreads);
  std::atomic<bool> failed{false};
  auto work = [&](std::size_t t) {
    try {
      for (std::size_t j = t; j < files.size() && !failed.load(std::memory_order_relaxed);
           j += nthreads) {
        decode_into(*files[j], w, size, folder.pixels.data() + j * per);
      }
    } catch (...) {
      errors[t] = std::current_exception();
      failed = true;
    }
  };
  // ResourceError when the system refuses a thread, after the pool has stopped and
  // joined the ones it started.
  ThreadPool pool(nthreads, "OmniglotDataset: PNG decoding threads");
  pool.run(nthreads, work);
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  return folder;
}

// ---- cache -------------------------------------------------------------------

struct CacheHeader {
  char magic[8];
  std::uint32_t version;
  std::uint32_t image_size;
  std::uint32_t source_size;
  std::uint32_t reserved;
  std::uint64_t fingerprint;
  std::uint64_t file_count;
  std::uint64_t num_characters;
  std::uint64_t num_images;
};

/// Longest alphabet or character name a cache file may hold.
constexpr std::uint32_t kMaxNameLength = 4096;

std::uint64_t total_images(const detail::OmniglotCacheKey& key) {
  std::uint64_t n = 0;
  for (const auto& c : key.characters) n += static_cast<std::uint64_t>(c.num_images);
  return n;
}

detail::OmniglotCacheKey cache_key(const Listing& listing, Index size) {
  detail::OmniglotCacheKey key{size, listing.fingerprint, {}};
  Index first = 0;
  for (const auto& c : listing.characters) {
    const auto count = static_cast<Index>(c.files.size());
    key.characters.push_back({c.alphabet, c.character, first, count});
    first += count;
  }
  return key;
}

}  // namespace

namespace detail {

std::uint64_t omniglot_cache_checksum(std::span<const std::uint8_t> bytes) {
  Hasher h;
  h.update(bytes.data(), bytes.size());
  return h.digest();
}

std::optional<Folder> read_omniglot_cache(const fs::path& path, const OmniglotCacheKey& key) {
  const Index size = key.image_size;
  if (size < 1 || size > OmniglotDataset::kSourceSize) return std::nullopt;
  const std::uint64_t num_images = total_images(key);
  std::error_code ec;
  const auto file_size = fs::file_size(path, ec);
  if (ec || file_size < sizeof(CacheHeader) + 8) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  Hasher h;
  CacheHeader hdr{};
  if (!in.read(reinterpret_cast<char*>(&hdr), sizeof hdr)) return std::nullopt;
  h.update(&hdr, sizeof hdr);
  // Everything the header declares must match the key, so every count below is bounded
  // by the (in-memory) listing and not by the file.
  if (std::memcmp(hdr.magic, kMagic, 8) != 0 || hdr.version != kVersion ||
      hdr.image_size != static_cast<std::uint32_t>(size) ||
      hdr.source_size != static_cast<std::uint32_t>(OmniglotDataset::kSourceSize) ||
      hdr.fingerprint != key.fingerprint || hdr.file_count != num_images ||
      hdr.num_characters != key.characters.size() || hdr.num_images != num_images) {
    return std::nullopt;
  }
  Folder folder;
  std::uint64_t next_image = 0;
  for (const auto& expect : key.characters) {
    Folder::Character c;
    for (std::string* s : {&c.alphabet, &c.character}) {
      std::uint32_t len = 0;
      if (!in.read(reinterpret_cast<char*>(&len), sizeof len) || len > kMaxNameLength) {
        return std::nullopt;
      }
      h.update(&len, sizeof len);
      s->resize(len);
      if (!in.read(s->data(), len)) return std::nullopt;
      h.update(s->data(), len);
    }
    std::uint64_t first = 0;
    std::uint64_t count = 0;
    if (!in.read(reinterpret_cast<char*>(&first), 8) ||
        !in.read(reinterpret_cast<char*>(&count), 8))
      return std::nullopt;
    h.update(&first, 8);
    h.update(&count, 8);
    if (first != next_image || count != static_cast<std::uint64_t>(expect.num_images) ||
        c.alphabet != expect.alphabet || c.character != expect.character) {
      return std::nullopt;
    }
    next_image += count;
    c.first_image = static_cast<Index>(first);
    c.num_images = static_cast<Index>(count);
    folder.characters.push_back(std::move(c));
  }
  const std::uint64_t values =
      checked_mul(num_images, static_cast<std::uint64_t>(size * size), "OmniglotDataset: cache");
  const std::streamoff here = in.tellg();
  if (here < 0) return std::nullopt;
  const auto pos = static_cast<std::uint64_t>(here);
  if (file_size < pos || (file_size - pos) / sizeof(float) < values ||
      pos + values * sizeof(float) + 8 != file_size) {
    return std::nullopt;
  }
  folder.pixels.resize(values);
  if (!in.read(reinterpret_cast<char*>(folder.pixels.data()),
               static_cast<std::streamsize>(values * sizeof(float)))) {
    return std::nullopt;
  }
  h.update(folder.pixels.data(), values * sizeof(float));
  std::uint64_t checksum = 0;
  if (!in.read(reinterpret_cast<char*>(&checksum), 8) || checksum != h.digest()) {
    return std::nullopt;
  }
  // Decoded pixels are area averages of values in [0, 1]; anything else (NaN included)
  // is corruption that the checksum cannot rule out.
  if (!std::all_of(folder.pixels.begin(), folder.pixels.end(),
                   [](float v) { return v >= 0.0f && v <= 1.0f; })) {
    return std::nullopt;
  }
  return folder;
}

bool write_omniglot_cache(const fs::path& path, const OmniglotCacheKey& key, const Folder& folder) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return false;
  const auto stamp =
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  const std::uint64_t tag = derive_seed({static_cast<std::uint64_t>(::getpid()), stamp,
                                         std::hash<std::thread::id>{}(std::this_thread::get_id())});
  fs::path tmp = path;
  tmp += ".tmp" + std::to_string(tag % 1000000007ULL);
  bool ok = false;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (out) {
      Hasher h;
      auto put = [&](const void* p, std::size_t n) {
        out.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
        h.update(p, n);
      };
      CacheHeader hdr{};
      std::memcpy(hdr.magic, kMagic, 8);
      hdr.version = kVersion;
      hdr.image_size = static_cast<std::uint32_t>(key.image_size);
      hdr.source_size = static_cast<std::uint32_t>(OmniglotDataset::kSourceSize);
      hdr.fingerprint = key.fingerprint;
      hdr.file_count = total_images(key);
      hdr.num_characters = folder.characters.size();
      hdr.num_images = hdr.file_count;
      put(&hdr, sizeof hdr);
      for (const auto& c : folder.characters) {
        for (const std::string* s : {&c.alphabet, &c.character}) {
          const auto len = static_cast<std::uint32_t>(s->size());
          put(&len, sizeof len);
          put(s->data(), s->size());
        }
        const auto first = static_cast<std::uint64_t>(c.first_image);
        const auto count = static_cast<std::uint64_t>(c.num_images);
        put(&first, 8);
        put(&count, 8);
      }
      put(folder.pixels.data(), folder.pixels.size() * sizeof(float));
      const std::uint64_t checksum = h.digest();
      out.write(reinterpret_cast<const char*>(&checksum), 8);
      out.flush();
      ok = out.good();
    }
  }
  if (ok) {
    fs::rename(tmp, path, ec);
    ok = !ec;
  }
  if (!ok) fs::remove(tmp, ec);
  return ok;
}

}  // namespace detail

namespace {

fs::path resolve_root(const OmniglotOptions& o) {
  if (!o.root.empty()) return o.root;
  const char* env = std::getenv("METALEARN_OMNIGLOT_DIR");
  METALEARN_CHECK(env != nullptr && *env != '\0', IoError,
                  "OmniglotDataset: no root folder given and METALEARN_OMNIGLOT_DIR is not set");
  return fs::path(env);
}

/// Cache folders to try, in order, and whether failing to write there is an error.
std::pair<std::vector<fs::path>, bool> cache_dirs(const OmniglotOptions& o, const fs::path& root) {
  if (!o.cache_dir.empty()) return {{o.cache_dir}, true};
  if (const char* env = std::getenv("METALEARN_CACHE_DIR"); env != nullptr && *env != '\0') {
    return {{fs::path(env)}, true};
  }
  std::error_code ec;
  return {{root, fs::temp_directory_path(ec) / "metalearn_cache"}, false};
}

std::string cache_name(const fs::path& root, const std::string& folder, Index size) {
  std::error_code ec;
  fs::path abs = fs::weakly_canonical(root, ec);
  if (ec) abs = root;
  Hasher h;
  h.update_string(abs.string());
  // The digest's upper 32 bits, as 8 hex digits.
  return fmt::format("omniglot_{}_{}px_{:08x}.mlcache", folder, size, h.digest() >> 32);
}

}  // namespace

OmniglotDataset::OmniglotDataset(OmniglotOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  METALEARN_CHECK(o.image_size >= 1 && o.image_size <= kSourceSize, ValueError,
                  "OmniglotDataset: image_size must be in [1, ", kSourceSize, "], got ",
                  o.image_size);
  METALEARN_CHECK(o.threads >= 0, ValueError,
                  "OmniglotDataset: threads must be >= 0 (0: one per core), got ", o.threads);
  const fs::path root = resolve_root(o);
  std::error_code ec;
  METALEARN_CHECK(fs::is_directory(root, ec), IoError, "OmniglotDataset: root folder '",
                  root.string(), "' does not exist or is not a directory");

  std::vector<std::string> names;
  if (o.split != OmniglotSplit::kEvaluation) names.emplace_back(kBackground);
  if (o.split != OmniglotSplit::kBackground) names.emplace_back(kEvaluation);

  const auto [dirs, strict] = cache_dirs(o, root);
  for (const std::string& name : names) {
    const Listing listing = list_folder(root / name);
    const detail::OmniglotCacheKey key = cache_key(listing, o.image_size);
    const std::string file = cache_name(root, name, o.image_size);
    std::optional<Folder> folder;
    if (o.use_cache) {
      for (const fs::path& dir : dirs) {
        folder = detail::read_omniglot_cache(dir / file, key);
        if (folder) {
          cache_files_.push_back(dir / file);
          break;
        }
      }
    }
    if (!folder) {
      from_cache_ = false;
      folder = decode_folder(listing, o.image_size, o.threads);
      if (o.use_cache) {
        bool written = false;
        for (const fs::path& dir : dirs) {
          if (detail::write_omniglot_cache(dir / file, key, *folder)) {
            cache_files_.push_back(dir / file);
            written = true;
            break;
          }
        }
        METALEARN_CHECK(written || !strict, IoError, "OmniglotDataset: cannot write the cache '",
                        (dirs.front() / file).string(), "'");
      }
    }
    folders_.push_back(std::make_shared<const Folder>(std::move(*folder)));
    folder_names_.push_back(name);
  }
  if (o.use_cache == false) from_cache_ = false;
  select_characters();
}

OmniglotDataset OmniglotDataset::with_split(OmniglotSplit split, bool rotations) const {
  OmniglotDataset out = *this;
  out.options_.split = split;
  out.options_.rotations = rotations;
  out.folders_.clear();
  out.folder_names_.clear();
  for (const char* folder : {kBackground, kEvaluation}) {
    const bool background = std::string_view(folder) == kBackground;
    const bool needed =
        background ? split != OmniglotSplit::kEvaluation : split != OmniglotSplit::kBackground;
    if (!needed) continue;
    const auto it = std::find(folder_names_.begin(), folder_names_.end(), folder);
    METALEARN_CHECK(it != folder_names_.end(), ValueError,
                    "OmniglotDataset::with_split: the split needs ", folder, ", which ", name(),
                    " did not load (load OmniglotSplit::kAll)");
    out.folders_.push_back(folders_[static_cast<std::size_t>(it - folder_names_.begin())]);
    out.folder_names_.emplace_back(folder);
  }
  out.select_characters();
  return out;
}

void OmniglotDataset::select_characters() {
  const auto& o = options_;
  characters_.clear();
  for (const auto& f : folders_) {
    for (std::size_t k = 0; k < f->characters.size(); ++k) characters_.push_back({f.get(), k});
  }
  auto key = [](const CharacterRef& r) {
    const auto& c = r.folder->characters[r.index];
    return c.alphabet + "/" + c.character;
  };
  std::stable_sort(characters_.begin(), characters_.end(),
                   [&](const CharacterRef& a, const CharacterRef& b) { return key(a) < key(b); });
  constexpr std::size_t kVinyalsTrain = 1200;
  if (o.split == OmniglotSplit::kVinyalsTrain || o.split == OmniglotSplit::kVinyalsTest) {
    METALEARN_CHECK(characters_.size() > kVinyalsTrain, ValueError,
                    "OmniglotDataset: the Vinyals split needs more than ", kVinyalsTrain,
                    " characters, ", name(), " has ", characters_.size());
    if (o.split == OmniglotSplit::kVinyalsTrain) {
      characters_.resize(kVinyalsTrain);
    } else {
      characters_.erase(characters_.begin(), characters_.begin() + kVinyalsTrain);
    }
  }
}

const OmniglotDataset::Folder::Character& OmniglotDataset::character(Index k) const {
  const CharacterRef& r = characters_[static_cast<std::size_t>(k)];
  return r.folder->characters[r.index];
}

Index OmniglotDataset::check_class(Index c, const char* fn) const {
  METALEARN_CHECK(c >= 0 && c < num_classes(), ValueError, fn, ": class ", c, " out of range [0, ",
                  num_classes(), ")");
  return options_.rotations ? c / 4 : c;
}

Index OmniglotDataset::num_classes() const {
  return num_characters() * (options_.rotations ? 4 : 1);
}

Index OmniglotDataset::examples_per_class(Index c) const {
  return character(check_class(c, "OmniglotDataset::examples_per_class")).num_images;
}

Index OmniglotDataset::character_of(Index c) const {
  return check_class(c, "OmniglotDataset::character_of");
}

int OmniglotDataset::rotation_of(Index c) const {
  (void)check_class(c, "OmniglotDataset::rotation_of");
  return options_.rotations ? static_cast<int>(c % 4) : 0;
}

std::string OmniglotDataset::class_name(Index c) const {
  const auto& ch = character(check_class(c, "OmniglotDataset::class_name"));
  return ch.alphabet + "/" + ch.character;
}

Index OmniglotDataset::num_alphabets() const {
  std::set<std::string> names;
  for (Index k = 0; k < num_characters(); ++k) names.insert(character(k).alphabet);
  return static_cast<Index>(names.size());
}

Index OmniglotDataset::num_images() const {
  Index n = 0;
  for (Index k = 0; k < num_characters(); ++k) n += character(k).num_images;
  return n;
}

void OmniglotDataset::load(Index c, Index i, std::span<float> out) const {
  const Index k = check_class(c, "OmniglotDataset::load");
  const auto& ch = character(k);
  METALEARN_CHECK(i >= 0 && i < ch.num_images, ValueError, "OmniglotDataset::load: example ", i,
                  " out of range for class ", c, " (", ch.num_images, " examples)");
  const Index s = options_.image_size;
  METALEARN_CHECK(static_cast<Index>(out.size()) == s * s, ValueError,
                  "OmniglotDataset::load: buffer holds ", out.size(), " values, expected ", s * s);
  const CharacterRef& ref = characters_[static_cast<std::size_t>(k)];
  const float* src = ref.folder->pixels.data() + (ch.first_image + i) * s * s;
  const int r = options_.rotations ? static_cast<int>(c % 4) : 0;
  float* dst = out.data();
  switch (r) {
    case 0:
      std::copy_n(src, s * s, dst);
      break;
    case 1:  // 90 degrees counter-clockwise
      for (Index y = 0; y < s; ++y)
        for (Index x = 0; x < s; ++x) dst[y * s + x] = src[x * s + (s - 1 - y)];
      break;
    case 2:
      for (Index y = 0; y < s; ++y)
        for (Index x = 0; x < s; ++x) dst[y * s + x] = src[(s - 1 - y) * s + (s - 1 - x)];
      break;
    default:  // 270 degrees counter-clockwise
      for (Index y = 0; y < s; ++y)
        for (Index x = 0; x < s; ++x) dst[y * s + x] = src[(s - 1 - x) * s + y];
      break;
  }
}

std::string OmniglotDataset::name() const {
  static constexpr const char* kNames[] = {"vinyals_train", "vinyals_test", "background",
                                           "evaluation", "all"};
  return std::string("OmniglotDataset(") + kNames[static_cast<int>(options_.split)] +
         (options_.rotations ? ", rotations" : "") + ")";
}

}  // namespace metalearn::data
