// Files: MetricsLog writes valid JSON lines and a CSV whose header matches every
// row (rejecting a bad record before writing any of it), and atomic saves leave
// no temporary files behind.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "reliability/reliability.hpp"

namespace {

using reliability::expect_error;
using reliability::listing;
using reliability::read_bytes;
using reliability::write_bytes;
namespace ml = metalearn;
namespace fs = std::filesystem;

using MetricsFiles = reliability::ScratchDir;

std::vector<std::string> lines_of(const fs::path& path) {
  std::istringstream in(read_bytes(path));
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST_F(MetricsFiles, JsonWritesNonFiniteNumbersAsNull) {
  const fs::path path = dir_ / "log.jsonl";
  {
    ml::io::MetricsLog log(path);
    log.write(
        {{"loss", std::nan("")}, {"up", std::numeric_limits<double>::infinity()}, {"ok", 0.5}});
  }
  const auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), 1u);
  const auto j = nlohmann::json::parse(lines[0]);
  EXPECT_TRUE(j["loss"].is_null());
  EXPECT_TRUE(j["up"].is_null());
  EXPECT_EQ(j["ok"].get<double>(), 0.5);
}

TEST_F(MetricsFiles, JsonEscapesKeys) {
  const fs::path path = dir_ / "log.jsonl";
  const std::string key = "acc \"top-1\"\\\n\t\x01";
  {
    ml::io::MetricsLog log(path);
    log.write({{key, 1.0}});
  }
  const auto j = nlohmann::json::parse(lines_of(path).at(0));
  EXPECT_EQ(j.begin().key(), key);
}

TEST_F(MetricsFiles, DuplicateKeyIsRejectedBeforeWriting) {
  const fs::path path = dir_ / "log.jsonl";
  ml::io::MetricsLog log(path);
  log.write({{"a", 1.0}});
  const std::string before = read_bytes(path);
  expect_error<ml::ValueError>(
      [&] {
        log.write({{"a", 1.0}, {"a", 2.0}});
      },
      "key 'a' appears twice");
  EXPECT_EQ(read_bytes(path), before);
}

TEST_F(MetricsFiles, CsvRowWithOtherKeysIsRejectedBeforeWriting) {
  const fs::path path = dir_ / "log.csv";
  ml::io::MetricsLog log(path);
  log.write({{"step", 1.0}, {"loss", 0.5}});
  const std::string before = read_bytes(path);
  expect_error<ml::ValueError>(
      [&] {
        log.write({{"step", 2.0}, {"accuracy", 0.9}});
      },
      "column 1 of");
  EXPECT_EQ(read_bytes(path), before);
}

TEST_F(MetricsFiles, CsvRowWithAnExtraKeyIsRejectedBeforeWriting) {
  const fs::path path = dir_ / "log.csv";
  ml::io::MetricsLog log(path);
  log.write({{"step", 1.0}});
  const std::string before = read_bytes(path);
  expect_error<ml::ValueError>(
      [&] {
        log.write({{"step", 2.0}, {"loss", 0.1}});
      },
      "expects 1 columns (step), got 2 (step,loss)");
  EXPECT_EQ(read_bytes(path), before);
}

TEST_F(MetricsFiles, CsvKeyWithACommaIsRejectedBeforeWriting) {
  const fs::path path = dir_ / "log.csv";
  ml::io::MetricsLog log(path);
  expect_error<ml::ValueError>([&] { log.write({{"loss,train", 1.0}}); }, "key 'loss,train'");
  EXPECT_EQ(read_bytes(path), "");
  log.write({{"loss", 1.0}});  // the header is still the first record's
  EXPECT_EQ(lines_of(path), (std::vector<std::string>{"loss", "1"}));
}

TEST_F(MetricsFiles, CsvKeyWithAQuoteIsRejected) {
  const fs::path path = dir_ / "log.csv";
  ml::io::MetricsLog log(path);
  expect_error<ml::ValueError>([&] { log.write({{"a\"b", 1.0}}); }, "quote");
}

TEST_F(MetricsFiles, CsvFirstRecordWithoutColumnsIsRejected) {
  const fs::path path = dir_ / "log.csv";
  ml::io::MetricsLog log(path);
  expect_error<ml::ValueError>([&] { log.write({}); }, "has no columns");
  EXPECT_EQ(read_bytes(path), "");
}

TEST_F(MetricsFiles, CsvHeaderMatchesEveryRowAcrossAResume) {
  const fs::path path = dir_ / "log.csv";
  {
    ml::io::MetricsLog log(path);
    log.write({{"step", 1.0}, {"loss", std::nan("")}});
  }
  ml::io::MetricsLog log(path, /*append=*/true);
  const std::string before = read_bytes(path);
  expect_error<ml::ValueError>([&] { log.write({{"loss", 0.1}, {"step", 2.0}}); }, "column 0 of");
  EXPECT_EQ(read_bytes(path), before);
  log.write({{"step", 2.0}, {"loss", 0.25}});
  EXPECT_EQ(lines_of(path), (std::vector<std::string>{"step,loss", "1,nan", "2,0.25"}));
}

using AtomicSaves = reliability::ScratchDir;

ml::nn::ParamDict<float> some_tensors() {
  ml::nn::ParamDict<float> p;
  p.insert("w", ml::full<float>({3}, 1.f));
  return p;
}

/// The id of a process that has exited.
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

TEST_F(AtomicSaves, OrphanTemporaryOfAKilledSaveIsRemoved) {
  const fs::path path = dir_ / "ckpt.safetensors";
  const std::string orphan = "ckpt.safetensors.tmp." + std::to_string(dead_pid()) + ".12345";
  write_bytes(dir_ / orphan, std::string(1000, 'x'));
  ml::io::save_safetensors(path, some_tensors());
  EXPECT_EQ(listing(dir_), (std::set<std::string>{"ckpt.safetensors"}));
}

TEST_F(AtomicSaves, TemporaryOfALiveProcessIsKept) {
  const fs::path path = dir_ / "ckpt.safetensors";
  const std::string live = "ckpt.safetensors.tmp." + std::to_string(::getppid()) + ".1";
  const std::string other = "other.safetensors.tmp.999999999.1";
  write_bytes(dir_ / live, "x");
  write_bytes(dir_ / other, "x");
  ml::io::save_safetensors(path, some_tensors());
  EXPECT_EQ(listing(dir_), (std::set<std::string>{"ckpt.safetensors", live, other}));
}

TEST_F(AtomicSaves, FailedRenameLeavesNoTemporaryAndTheTargetAlone) {
  const fs::path path = dir_ / "taken";
  fs::create_directories(path / "inside");  // a non-empty directory cannot be replaced
  const auto files = listing(dir_);
  expect_error<ml::IoError>([&] { ml::io::save_safetensors(path, some_tensors()); },
                            "cannot move the checkpoint into place");
  EXPECT_EQ(listing(dir_), files);
  EXPECT_TRUE(fs::is_directory(path / "inside"));
}

TEST_F(AtomicSaves, SaveIntoAFileAsDirectoryFailsCleanly) {
  write_bytes(dir_ / "plain", "x");
  const auto files = listing(dir_);
  expect_error<ml::IoError>(
      [&] { ml::io::save_safetensors(dir_ / "plain" / "ckpt.safetensors", some_tensors()); },
      "cannot create");
  EXPECT_EQ(listing(dir_), files);
  EXPECT_EQ(read_bytes(dir_ / "plain"), "x");
}

TEST_F(AtomicSaves, ReplacingAGoodFileKeepsNoTemporary) {
  const fs::path path = dir_ / "ckpt.safetensors";
  ml::io::save_safetensors(path, some_tensors());
  auto more = some_tensors();
  more.insert("b", ml::ones<float>({2}));
  ml::io::save_safetensors(path, more);
  EXPECT_EQ(listing(dir_), (std::set<std::string>{"ckpt.safetensors"}));
  EXPECT_EQ(ml::io::load_safetensors<float>(path).size(), 2u);
}

}  // namespace
