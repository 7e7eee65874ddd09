#pragma once
// MetricsLog: appends one record per line to a CSV or JSON-lines file (chosen by
// the extension: .csv or .jsonl), flushing each line so a crash loses nothing
// already logged. The CSV header is written from the first record's keys; later
// records must have the same keys. With `append`, an existing file is continued
// (a CSV keeps its header), as when a training run resumes.

#include <cmath>
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

  /// Appends one record. Everything is checked before anything is written: keys
  /// must be unique and, in a CSV file, free of commas, quotes and line breaks and
  /// the same as the header's, in the same order (ValueError naming the file
  /// otherwise). In JSON lines keys are escaped and NaN or infinite values are
  /// written as null (JSON has no such numbers); a CSV file writes them as nan, inf
  /// and -inf.
  void write(const Record& record) {
    for (std::size_t i = 0; i < record.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        METALEARN_CHECK(record[i].first != record[j].first, ValueError, "MetricsLog::write: key '",
                        record[i].first, "' appears twice in one record for ", path_.string());
      }
    }
    std::string line;
    if (csv_) {
      for (const auto& [k, v] : record) {
        METALEARN_CHECK(k.find_first_of(",\"\r\n") == std::string::npos, ValueError,
                        "MetricsLog::write: key '", k, "' of ", path_.string(),
                        " contains a comma, quote or line break, which a CSV header cannot hold; "
                        "rename it or log to .jsonl");
      }
      const bool header = keys_.empty();
      if (!header) {
        METALEARN_CHECK(record.size() == keys_.size(), ValueError,
                        "MetricsLog::write: ", path_.string(), " expects ", keys_.size(),
                        " columns (", join(keys_), "), got ", record.size(), " (", join(record),
                        ")");
        for (std::size_t i = 0; i < record.size(); ++i) {
          METALEARN_CHECK(record[i].first == keys_[i], ValueError, "MetricsLog::write: column ", i,
                          " of ", path_.string(), " is '", keys_[i], "', got '", record[i].first,
                          "'");
        }
      } else {
        METALEARN_CHECK(!record.empty(), ValueError, "MetricsLog::write: the first record of ",
                        path_.string(), " has no columns, so there is no header to write");
        for (const auto& [k, v] : record) line += (line.empty() ? "" : ",") + k;
        line += "\n";
      }
      for (std::size_t i = 0; i < record.size(); ++i) {
        line += (i ? "," : "") + number(record[i].second, false);
      }
      if (header) {
        for (const auto& [k, v] : record) keys_.push_back(k);
      }
    } else {
      line = "{";
      for (std::size_t i = 0; i < record.size(); ++i) {
        line +=
            (i ? ", \"" : "\"") + escape(record[i].first) + "\": " + number(record[i].second, true);
      }
      line += "}";
    }
    line += "\n";
    const bool written = std::fwrite(line.data(), 1, line.size(), file_) == line.size();
    METALEARN_CHECK(written && std::fflush(file_) == 0, IoError, "MetricsLog::write: writing ",
                    path_.string(), " failed (disk full?)");
  }

 private:
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  bool csv_ = true;
  std::vector<std::string> keys_;

  /// `v` with 9 significant digits; NaN and infinities as null in JSON.
  static std::string number(double v, bool json) {
    if (!std::isfinite(v)) {
      if (json) return "null";
      return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
  }
  /// `s` as the inside of a JSON string.
  static std::string escape(const std::string& s) {
    std::string out;
    for (const char c : s) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
            out += buf;
          } else {
            out += c;
          }
      }
    }
    return out;
  }
  static std::string join(const std::vector<std::string>& keys) {
    std::string out;
    for (const auto& k : keys) out += (out.empty() ? "" : ",") + k;
    return out;
  }
  static std::string join(const Record& record) {
    std::string out;
    for (const auto& [k, v] : record) out += (out.empty() ? "" : ",") + k;
    return out;
  }
};

}  // namespace metalearn::io
