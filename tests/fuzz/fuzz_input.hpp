#pragma once
// The fuzz targets' common part: the readers under test take a path, so each input is
// written to a file of this process's own (in the system temp folder) and read back.
// An input may fail only with a metalearn::Error; any other exception, a crash or a
// sanitizer report is a finding.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace metalearn::fuzz {

/// One input as a file of this process's own, removed again when the input is done (a
/// fuzzing run executes millions of inputs and must leave nothing in the temp folder).
class InputFile {
 public:
  InputFile(const char* name, const std::uint8_t* data, std::size_t size)
      : path_(std::filesystem::temp_directory_path() /
              ("metalearn_fuzz_" + std::to_string(::getpid()) + "_" + name)) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace metalearn::fuzz
