#pragma once
// Whole-file reads and atomic writes of a run folder's text files.

#include <filesystem>
#include <fstream>
#include <metalearn/core/error.hpp>
#include <sstream>
#include <string>
#include <system_error>

namespace metalearn::cli {

/// The whole text of `path`. @throws IoError naming it.
inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  METALEARN_CHECK(f.good(), IoError, "metalearn: cannot read ", path.string());
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

/// Writes `text` to `path` whole or not at all: a temporary file renamed over it.
/// @throws IoError naming the file.
inline void write_file_atomically(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    METALEARN_CHECK(f.good(), IoError, "metalearn: cannot write ", tmp.string());
    f << text;
    f.flush();
    METALEARN_CHECK(f.good(), IoError, "metalearn: writing ", tmp.string(), " failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  METALEARN_CHECK(!ec, IoError, "metalearn: cannot rename ", tmp.string(), " to ", path.string(),
                  ": ", ec.message());
}

}  // namespace metalearn::cli
