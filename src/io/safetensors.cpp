#include "metalearn/io/safetensors.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "metalearn/core/checked.hpp"
#include "metalearn/core/error.hpp"

namespace metalearn::io::detail {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors IO assumes a little-endian machine");

const char* dtype_name(DType d) {
  return d == DType::kF32 ? "F32" : "F64";
}
std::size_t dtype_size(DType d) {
  return d == DType::kF32 ? 4 : 8;
}

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw IoError("load_safetensors: " + path.string() + ": " + what);
}

/// The temporary files of saves to `target` are named "<target>.tmp.<pid>.<random>",
/// so the next save can tell the orphans of a killed process from a save still
/// running in another one.
std::string temp_prefix(const std::filesystem::path& target) {
  return target.filename().string() + ".tmp.";
}

/// Removes the temporary files that saves to `target` left behind when their
/// process was killed (the process named in the file name no longer exists).
void remove_orphan_temps(const std::filesystem::path& dir, const std::filesystem::path& target) {
  const std::string prefix = temp_prefix(target);
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::size_t dot = name.find('.', prefix.size());
    if (dot == std::string::npos || dot == prefix.size()) continue;
    const std::string pid_text = name.substr(prefix.size(), dot - prefix.size());
    if (pid_text.find_first_not_of("0123456789") != std::string::npos || pid_text.size() > 9) {
      continue;
    }
    const auto pid = static_cast<pid_t>(std::stol(pid_text));
    if (pid <= 0 || pid == ::getpid()) continue;  // this process's saves clean up after themselves
    if (::kill(pid, 0) == -1 && errno == ESRCH) {
      std::error_code ignored;
      std::filesystem::remove(it->path(), ignored);
    }
  }
}

/// Removes the temporary file unless the save reached its rename.
class TempFile {
 public:
  explicit TempFile(std::filesystem::path path) : path_(std::move(path)) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) {
      std::error_code ignored;
      std::filesystem::remove(path_, ignored);
    }
  }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] int open() {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    return fd_;
  }
  [[nodiscard]] bool write(const void* data, std::size_t bytes) const {
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
      const ::ssize_t n = ::write(fd_, p, bytes);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      p += n;
      bytes -= static_cast<std::size_t>(n);
    }
    return true;
  }
  /// Flushes to disk and closes; false on failure.
  [[nodiscard]] bool sync_and_close() {
    const bool ok = ::fsync(fd_) == 0;
    const bool closed = ::close(fd_) == 0;
    fd_ = -1;
    return ok && closed;
  }
  void commit() { committed_ = true; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  bool committed_ = false;
};

/// Makes a rename in `dir` durable.
void sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_safetensors(const std::filesystem::path& path, const std::vector<RawTensor>& tensors,
                       const Metadata& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::size_t offset = 0;
  for (const auto& t : tensors) {
    METALEARN_CHECK(t.name != "__metadata__" && !header.contains(t.name), ValueError,
                    "save_safetensors: duplicate or reserved tensor name '", t.name, "'");
    const std::size_t end = checked_add(offset, t.bytes, "save_safetensors: data offset");
    header[t.name] = {
        {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // align the data to 8 bytes
  const std::uint64_t n = text.size();

  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  remove_orphan_temps(dir, path);
  std::random_device rd;
  TempFile tmp(dir / (temp_prefix(path) + std::to_string(::getpid()) + "." + std::to_string(rd()) +
                      std::to_string(rd())));
  METALEARN_CHECK(tmp.open() >= 0, IoError, "save_safetensors: cannot create ", tmp.path().string(),
                  " (", std::strerror(errno), "); check that the directory exists and is writable");
  bool ok = tmp.write(&n, sizeof n) && tmp.write(text.data(), text.size());
  for (const auto& t : tensors) ok = ok && tmp.write(t.data, t.bytes);
  // Flushed to disk before the rename, so the rename never exposes a partial file.
  ok = ok && tmp.sync_and_close();
  METALEARN_CHECK(ok, IoError, "save_safetensors: writing ", tmp.path().string(), " failed (",
                  std::strerror(errno), "); ", path.string(),
                  " is unchanged; free disk space and save again");
  std::filesystem::rename(tmp.path(), path, ec);
  METALEARN_CHECK(!ec, IoError, "save_safetensors: cannot move the checkpoint into place at ",
                  path.string(), " (", ec.message(), ")");
  tmp.commit();
  sync_directory(dir);
}

namespace {

/// The header of an open safetensors file: its JSON, checked for duplicate keys, and the
/// file's size and header length.
struct Header {
  nlohmann::ordered_json json;
  std::uint64_t size = 0;
  std::uint64_t length = 0;
};

Header read_header(const std::filesystem::path& path, std::ifstream& in) {
  if (!in) fail(path, "cannot open the file");
  std::error_code ec;
  const auto size = static_cast<std::uint64_t>(std::filesystem::file_size(path, ec));
  if (ec || size < 8) fail(path, "file is too short to be a safetensors file");
  std::uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), sizeof n);
  if (n > size - 8 || n > (std::uint64_t{100} << 20)) {
    fail(path, "header length " + std::to_string(n) + " does not fit a file of " +
                   std::to_string(size) + " bytes");
  }
  std::string text(n, '\0');
  in.read(text.data(), static_cast<std::streamsize>(n));
  if (!in) fail(path, "file is truncated");
  nlohmann::ordered_json header;
  // The keys seen in each open object, to reject a key given twice (the JSON
  // parser would silently keep one of the values).
  std::vector<std::vector<std::string>> keys;
  std::string duplicate;
  const auto track = [&](int /*depth*/, nlohmann::ordered_json::parse_event_t event,
                         nlohmann::ordered_json& parsed) {
    using Event = nlohmann::ordered_json::parse_event_t;
    if (event == Event::object_start) {
      keys.emplace_back();
    } else if (event == Event::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (event == Event::key && !keys.empty()) {
      const auto key = parsed.get<std::string>();
      auto& seen = keys.back();
      if (duplicate.empty() && std::find(seen.begin(), seen.end(), key) != seen.end()) {
        duplicate = key;
      }
      seen.push_back(key);
    }
    return true;
  };
  try {
    header = nlohmann::ordered_json::parse(text, track);
  } catch (const std::exception& e) {
    fail(path, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!duplicate.empty()) {
    fail(path, "key '" + duplicate + "' appears twice in the header; the file is corrupt");
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");
  return {.json = std::move(header), .size = size, .length = n};
}

Metadata metadata_of(const std::filesystem::path& path, const nlohmann::ordered_json& entry) {
  try {
    return entry.get<Metadata>();
  } catch (const std::exception&) {
    fail(path, "__metadata__ must map strings to strings");
  }
}

}  // namespace

Metadata read_safetensors_metadata(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const Header header = read_header(path, in);
  const auto it = header.json.find("__metadata__");
  return it == header.json.end() ? Metadata{} : metadata_of(path, *it);
}

StoredFile read_safetensors(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const Header parsed_header = read_header(path, in);
  const nlohmann::ordered_json& header = parsed_header.json;
  const std::uint64_t size = parsed_header.size;
  const std::uint64_t n = parsed_header.length;
  const std::uint64_t data_size = size - 8 - n;
  std::vector<char> data(data_size);
  in.read(data.data(), static_cast<std::streamsize>(data_size));
  if (!in) fail(path, "file is truncated");

  StoredFile file;
  std::vector<StoredTensor>& out = file.tensors;
  struct Range {
    std::uint64_t begin, end;
    std::string name;
  };
  std::vector<Range> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      file.metadata = metadata_of(path, entry);
      continue;
    }
    const std::string tensor = "tensor '" + name + "' ";
    try {
      StoredTensor t;
      t.name = name;
      if (!entry.is_object()) fail(path, tensor + "is not a JSON object");
      const auto& dtype_entry = entry.at("dtype");
      if (!dtype_entry.is_string()) fail(path, tensor + "has a dtype that is not a string");
      const auto dtype = dtype_entry.get<std::string>();
      if (dtype == "F32") {
        t.dtype = DType::kF32;
      } else if (dtype == "F64") {
        t.dtype = DType::kF64;
      } else {
        fail(path, tensor + "has unsupported dtype " + dtype + " (F32 and F64 are supported)");
      }
      const auto& shape = entry.at("shape");
      if (!shape.is_array()) fail(path, tensor + "has a shape that is not an array");
      if (shape.size() > static_cast<std::size_t>(Shape::kMaxDims)) {
        fail(path, tensor + "has " + std::to_string(shape.size()) +
                       " dimensions, more than the maximum of " + std::to_string(Shape::kMaxDims));
      }
      for (const auto& d : shape) {
        if (!d.is_number_integer()) {
          fail(path, tensor + "has shape entry " + d.dump() +
                         ", which is not a whole number; the file is corrupt");
        }
        if (d.is_number_unsigned() ? d.get<std::uint64_t>() > static_cast<std::uint64_t>(
                                                                  std::numeric_limits<Index>::max())
                                   : d.get<std::int64_t>() < 0) {
          fail(path, tensor + "has a negative or too large extent " + d.dump());
        }
        t.shape.push_back(d.get<Index>());
      }
      const auto& offsets_entry = entry.at("data_offsets");
      if (!offsets_entry.is_array() || offsets_entry.size() != 2 ||
          !offsets_entry[0].is_number_unsigned() || !offsets_entry[1].is_number_unsigned()) {
        fail(path, tensor + "has data_offsets " + offsets_entry.dump() +
                       "; expected two non-negative whole numbers [begin, end]");
      }
      const auto begin = offsets_entry[0].get<std::uint64_t>();
      const auto end = offsets_entry[1].get<std::uint64_t>();
      if (begin > end || end > data_size) {
        fail(path, tensor + "has data offsets [" + std::to_string(begin) + ", " +
                       std::to_string(end) + "] outside the data section of " +
                       std::to_string(data_size) + " bytes");
      }
      std::uint64_t count = 1;
      std::uint64_t bytes = 0;
      try {
        for (Index d : t.shape) count = checked_mul(count, static_cast<std::uint64_t>(d), "shape");
        bytes = checked_mul(count, std::uint64_t{dtype_size(t.dtype)}, "byte count");
      } catch (const OverflowError& e) {
        fail(path, tensor + "has a shape whose size overflows (" + e.what() + ")");
      }
      if (end - begin != bytes) {
        fail(path, tensor + "holds " + std::to_string(end - begin) +
                       " bytes, but its shape and dtype need " + std::to_string(bytes));
      }
      ranges.push_back({begin, end, name});
      t.values.resize(count);
      const char* p = data.data() + begin;
      for (std::uint64_t i = 0; i < count; ++i) {
        if (t.dtype == DType::kF32) {
          float v;
          std::memcpy(&v, p + 4 * i, 4);
          t.values[i] = v;
        } else {
          std::memcpy(&t.values[i], p + 8 * i, 8);
        }
      }
      out.push_back(std::move(t));
    } catch (const IoError&) {
      throw;
    } catch (const std::exception& e) {
      fail(path, tensor + "has a malformed entry (" + e.what() + ")");
    }
  }
  // The data section is covered exactly: no overlaps, no holes, no trailing bytes.
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t covered = 0;
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    if (ranges[i].begin < covered) {
      fail(path, "tensors '" + ranges[i - 1].name + "' and '" + ranges[i].name +
                     "' overlap in the data section");
    }
    if (ranges[i].begin > covered) {
      fail(path, "the data section has " + std::to_string(ranges[i].begin - covered) +
                     " unused bytes before tensor '" + ranges[i].name + "'; the file is corrupt");
    }
    covered = ranges[i].end;
  }
  if (covered != data_size) {
    fail(path, std::to_string(data_size - covered) +
                   " trailing bytes after the last tensor; the file is corrupt or was appended to");
  }
  return file;
}

}  // namespace metalearn::io::detail
