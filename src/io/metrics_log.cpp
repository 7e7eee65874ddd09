#include "metalearn/io/metrics_log.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <iterator>
#include <string_view>

#include "metalearn/core/error.hpp"

namespace metalearn::io {
namespace {

/// The keys of `record`, in order.
std::vector<std::string> keys_of(const MetricsLog::Record& record) {
  std::vector<std::string> keys;
  keys.reserve(record.size());
  for (const auto& [k, v] : record) keys.push_back(k);
  return keys;
}

/// Appends `v` with 9 significant digits; NaN and infinities as null in JSON and as
/// nan, inf and -inf in CSV.
void append_number(fmt::memory_buffer& out, double v, bool json) {
  if (std::isfinite(v)) {
    fmt::format_to(std::back_inserter(out), "{:.9g}", v);
  } else {
    const std::string_view text =
        json ? "null" : (std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
    out.append(text);
  }
}

/// Appends `s` as the inside of a JSON string.
void append_escaped(fmt::memory_buffer& out, const std::string& s) {
  for (const char c : s) {
    switch (c) {
      case '"':
        out.append(std::string_view("\\\""));
        break;
      case '\\':
        out.append(std::string_view("\\\\"));
        break;
      case '\n':
        out.append(std::string_view("\\n"));
        break;
      case '\r':
        out.append(std::string_view("\\r"));
        break;
      case '\t':
        out.append(std::string_view("\\t"));
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out.push_back(c);
        }
    }
  }
}

}  // namespace

MetricsLog::MetricsLog(const std::filesystem::path& path, bool append) : path_(path) {
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

MetricsLog::~MetricsLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void MetricsLog::write(const Record& record) {
  for (std::size_t i = 0; i < record.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      METALEARN_CHECK(record[i].first != record[j].first, ValueError, "MetricsLog::write: key '",
                      record[i].first, "' appears twice in one record for ", path_.string());
    }
  }
  fmt::memory_buffer line;
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
                      " columns (", fmt::format("{}", fmt::join(keys_, ",")), "), got ",
                      record.size(), " (", fmt::format("{}", fmt::join(keys_of(record), ",")), ")");
      for (std::size_t i = 0; i < record.size(); ++i) {
        METALEARN_CHECK(record[i].first == keys_[i], ValueError, "MetricsLog::write: column ", i,
                        " of ", path_.string(), " is '", keys_[i], "', got '", record[i].first,
                        "'");
      }
    } else {
      METALEARN_CHECK(!record.empty(), ValueError, "MetricsLog::write: the first record of ",
                      path_.string(), " has no columns, so there is no header to write");
      keys_ = keys_of(record);
      fmt::format_to(std::back_inserter(line), "{}\n", fmt::join(keys_, ","));
    }
    for (std::size_t i = 0; i < record.size(); ++i) {
      if (i > 0) line.push_back(',');
      append_number(line, record[i].second, /*json=*/false);
    }
  } else {
    line.push_back('{');
    for (std::size_t i = 0; i < record.size(); ++i) {
      line.append(std::string_view(i > 0 ? ", \"" : "\""));
      append_escaped(line, record[i].first);
      line.append(std::string_view("\": "));
      append_number(line, record[i].second, /*json=*/true);
    }
    line.push_back('}');
  }
  line.push_back('\n');
  const bool written = std::fwrite(line.data(), 1, line.size(), file_) == line.size();
  METALEARN_CHECK(written && std::fflush(file_) == 0, IoError, "MetricsLog::write: writing ",
                  path_.string(), " failed (disk full?)");
}

}  // namespace metalearn::io
