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

namespace metalearn::fuzz {

inline std::filesystem::path input_file(const char* name, const std::uint8_t* data,
                                        std::size_t size) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("metalearn_fuzz_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace metalearn::fuzz
