#pragma once
/// @file
/// MetricsLog: appends one record per line to a CSV or JSON-lines file (chosen by
/// the extension: .csv or .jsonl), flushing each line so a crash loses nothing
/// already logged. The CSV header is written from the first record's keys; later
/// records must have the same keys. With `append`, an existing file is continued
/// (a CSV keeps its header), as when a training run resumes.

#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "metalearn/core/export.hpp"

namespace metalearn::io {

/// A metrics file open for appending: one record, a list of named numbers, per line.
class METALEARN_API MetricsLog {
 public:
  /// Named numbers, written in this order.
  using Record = std::vector<std::pair<std::string, double>>;

  /// Opens `path` (.csv or .jsonl, ValueError otherwise; its folder is created),
  /// truncating it unless `append`. @throws IoError when it cannot be opened.
  explicit MetricsLog(const std::filesystem::path& path, bool append = false);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  /// Appends one record. Everything is checked before anything is written: keys
  /// must be unique and, in a CSV file, free of commas, quotes and line breaks and
  /// the same as the header's, in the same order (ValueError naming the file
  /// otherwise). In JSON lines keys are escaped and NaN or infinite values are
  /// written as null (JSON has no such numbers); a CSV file writes them as nan, inf
  /// and -inf. Numbers have 9 significant digits.
  void write(const Record& record);

 private:
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  bool csv_ = true;
  std::vector<std::string> keys_;
};

}  // namespace metalearn::io
