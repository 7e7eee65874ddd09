#include "metalearn/io/safetensors.hpp"

#include <unistd.h>
#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

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

}  // namespace

void write_safetensors(const std::filesystem::path& path, const std::vector<RawTensor>& tensors,
                       const Metadata& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::size_t offset = 0;
  for (const auto& t : tensors) {
    METALEARN_CHECK(t.name != "__metadata__" && !header.contains(t.name), ValueError,
                    "save_safetensors: duplicate or reserved tensor name '", t.name, "'");
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes}}};
    offset += t.bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // align the data to 8 bytes
  const std::uint64_t n = text.size();

  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::random_device rd;
  const std::filesystem::path tmp =
      dir / (path.filename().string() + ".tmp" + std::to_string(rd()) + std::to_string(::getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    METALEARN_CHECK(out.good(), IoError, "save_safetensors: cannot create ", tmp.string());
    out.write(reinterpret_cast<const char*>(&n), sizeof n);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : tensors) {
      out.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(t.bytes));
    }
    out.flush();
    if (!out.good()) {
      out.close();
      std::filesystem::remove(tmp, ec);
      throw IoError("save_safetensors: writing " + tmp.string() + " failed (disk full?)");
    }
  }
  // Flush to disk before the rename, so the rename never exposes a partial file.
  if (std::FILE* f = std::fopen(tmp.c_str(), "rb")) {
    ::fsync(::fileno(f));
    std::fclose(f);
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw IoError("save_safetensors: cannot move the checkpoint into place at " + path.string());
  }
}

std::vector<StoredTensor> read_safetensors(const std::filesystem::path& path, Metadata* metadata) {
  std::ifstream in(path, std::ios::binary);
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
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(text);
  } catch (const std::exception& e) {
    fail(path, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");
  const std::uint64_t data_size = size - 8 - n;
  std::vector<char> data(data_size);
  in.read(data.data(), static_cast<std::streamsize>(data_size));
  if (!in) fail(path, "file is truncated");

  std::vector<StoredTensor> out;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (metadata != nullptr) {
        try {
          *metadata = entry.get<Metadata>();
        } catch (const std::exception&) {
          fail(path, "__metadata__ must map strings to strings");
        }
      }
      continue;
    }
    try {
      StoredTensor t;
      t.name = name;
      const auto dtype = entry.at("dtype").get<std::string>();
      if (dtype == "F32") {
        t.dtype = DType::kF32;
      } else if (dtype == "F64") {
        t.dtype = DType::kF64;
      } else {
        fail(path, "tensor '" + name + "' has unsupported dtype " + dtype);
      }
      t.shape = entry.at("shape").get<std::vector<Index>>();
      const auto offsets = entry.at("data_offsets").get<std::vector<std::uint64_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size) {
        fail(path, "tensor '" + name + "' has data offsets outside the data section");
      }
      std::uint64_t count = 1;
      for (Index d : t.shape) {
        if (d < 0) fail(path, "tensor '" + name + "' has a negative extent");
        count *= static_cast<std::uint64_t>(d);
      }
      if (offsets[1] - offsets[0] != count * dtype_size(t.dtype)) {
        fail(path, "tensor '" + name + "' holds " + std::to_string(offsets[1] - offsets[0]) +
                       " bytes, but its shape and dtype need " +
                       std::to_string(count * dtype_size(t.dtype)));
      }
      ranges.emplace_back(offsets[0], offsets[1]);
      t.values.resize(count);
      const char* p = data.data() + offsets[0];
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
      fail(path, "tensor '" + name + "' has a malformed entry (" + e.what() + ")");
    }
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) fail(path, "tensors overlap in the data section");
  }
  return out;
}

}  // namespace metalearn::io::detail
