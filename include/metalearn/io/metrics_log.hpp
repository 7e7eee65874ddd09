#pragma once
// MetricsLog: appends one record per line to a CSV or JSON-lines file (chosen by
// the extension: .csv or .jsonl), flushing each line so a crash loses nothing
// already logged. The CSV header is written from the first record's keys; later
// records must have the same keys. With `append`, an existing file is continued
// (a CSV keeps its header), as when a training run resumes.

#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "metalearn/core/error.hpp"

namespace metalearn::io {

class MetricsLog {
 public:
  using Record = std::vector<std::pair<std::string, double>>;

  explicit MetricsLog(const std::filesystem::path& path, bool append = false) : path_(path) {
    const auto ext = path.extension().string();
    METALEARN_CHECK(ext == ".csv" || ext == ".jsonl", ValueError, "MetricsLog: ", path.string(),
                    " must end in .csv or .jsonl");
    csv_ = ext == ".csv";
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
    if (append && csv_ && std::filesystem::exists(path)) {
      // Continue under the existing header.
      if (std::FILE* in = std::fopen(path.c_str(), "r")) {
        std::string header;
        for (int ch = std::fgetc(in); ch != EOF && ch != '\n'; ch = std::fgetc(in)) {
          header.push_back(static_cast<char>(ch));
        }
        std::fclose(in);
        std::size_t start = 0;
        while (!header.empty() && start <= header.size()) {
          const std::size_t comma = header.find(',', start);
          keys_.push_back(header.substr(start, comma - start));
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
      }
    }
    file_ = std::fopen(path.c_str(), append ? "a" : "w");
    METALEARN_CHECK(file_ != nullptr, IoError, "MetricsLog: cannot open ", path.string(),
                    " for writing");
  }
  ~MetricsLog() {
    if (file_ != nullptr) std::fclose(file_);
  }
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void write(const Record& record) {
    if (csv_) {
      if (keys_.empty()) {
        for (const auto& [k, v] : record) keys_.push_back(k);
        for (std::size_t i = 0; i < keys_.size(); ++i) {
          std::fprintf(file_, "%s%s", i ? "," : "", keys_[i].c_str());
        }
        std::fprintf(file_, "\n");
      }
      METALEARN_CHECK(record.size() == keys_.size(), ValueError,
                      "MetricsLog::write: ", path_.string(), " expects ", keys_.size(),
                      " columns, got ", record.size());
      for (std::size_t i = 0; i < record.size(); ++i) {
        METALEARN_CHECK(record[i].first == keys_[i], ValueError, "MetricsLog::write: column ", i,
                        " of ", path_.string(), " is '", keys_[i], "', got '", record[i].first,
                        "'");
      }
      for (std::size_t i = 0; i < record.size(); ++i) {
        std::fprintf(file_, "%s%.9g", i ? "," : "", record[i].second);
      }
    } else {
      std::fprintf(file_, "{");
      for (std::size_t i = 0; i < record.size(); ++i) {
        std::fprintf(file_, "%s\"%s\": %.9g", i ? ", " : "", record[i].first.c_str(),
                     record[i].second);
      }
      std::fprintf(file_, "}");
    }
    std::fprintf(file_, "\n");
    METALEARN_CHECK(std::fflush(file_) == 0, IoError, "MetricsLog::write: writing ", path_.string(),
                    " failed");
  }

 private:
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  bool csv_ = true;
  std::vector<std::string> keys_;
};

}  // namespace metalearn::io
