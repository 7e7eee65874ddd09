// Checkpoints: round trips in both precisions, metadata, atomic replacement, and
// a clear IoError for every kind of damaged file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <metalearn/metalearn.hpp>
#include <string>

namespace ml = metalearn;
namespace fs = std::filesystem;

namespace {

class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("metalearn_io_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static ml::nn::ParamDict<float> sample() {
    ml::Generator gen(5);
    ml::nn::ParamDict<float> p;
    p.insert("features.0.weight", ml::randn<float>({4, 1, 3, 3}, gen));
    p.insert("features.0.bias", ml::randn<float>({4}, gen));
    p.insert("scalar", ml::full<float>(ml::Shape{}, 2.5f));
    return p;
  }

  static void write_bytes(const fs::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
  }
  static std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  static void expect_io_error(const fs::path& path, const std::string& fragment) {
    try {
      (void)ml::io::load_safetensors<float>(path);
      ADD_FAILURE() << "no IoError for " << path;
    } catch (const ml::IoError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(path.string()), std::string::npos) << what;
      EXPECT_NE(what.find(fragment), std::string::npos) << what;
    }
  }

  fs::path dir_;
};

TEST_F(Safetensors, RoundTripKeepsNamesOrderShapesAndValues) {
  const auto p = sample();
  const auto path = dir_ / "ckpt.safetensors";
  ml::io::save_safetensors(path, p, {{"step", "42"}});
  const auto [q, meta] = ml::io::load_safetensors_file<float>(path);
  EXPECT_EQ(meta.at("step"), "42");
  ASSERT_EQ(q.names(), p.names());
  for (const auto& name : p.names()) {
    ASSERT_EQ(q.at(name).shape(), p.at(name).shape()) << name;
    EXPECT_EQ(q.at(name).to_vector(), p.at(name).to_vector()) << name;
  }
  // Only the checkpoint is left in the directory (the temporary file was renamed).
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(Safetensors, DoublesAreStoredAsF64AndConvertOnLoad) {
  ml::nn::ParamDict<double> p;
  p.insert("w", ml::from_vector<double>({0.1, 1e-300, -3.0}));
  const auto path = dir_ / "d.safetensors";
  ml::io::save_safetensors(path, p);
  const auto stored = ml::io::inspect_safetensors(path).tensors;
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].dtype, ml::io::DType::kF64);
  EXPECT_EQ(ml::io::load_safetensors<double>(path).at("w").to_vector(), p.at("w").to_vector());
  EXPECT_FLOAT_EQ(ml::io::load_safetensors<float>(path).at("w").data()[0], 0.1f);
}

TEST_F(Safetensors, SavingReplacesAnExistingCheckpointWhole) {
  const auto path = dir_ / "ckpt.safetensors";
  ml::io::save_safetensors(path, sample());
  ml::nn::ParamDict<float> small;
  small.insert("only", ml::ones<float>({2}));
  ml::io::save_safetensors(path, small);
  EXPECT_EQ(ml::io::load_safetensors<float>(path).names(), std::vector<std::string>{"only"});
}

TEST_F(Safetensors, ModuleParametersSurviveACheckpoint) {
  ml::Generator gen(1);
  ml::nn::MLP<float> a({1, 8, 1}, gen);
  ml::nn::MLP<float> b({1, 8, 1}, gen);
  const auto path = dir_ / "mlp.safetensors";
  ml::io::save_safetensors(path, a.named_parameters());
  b.load_parameters(ml::io::load_safetensors<float>(path));
  EXPECT_EQ(a.parameters()[0].to_vector(), b.parameters()[0].to_vector());
}

TEST_F(Safetensors, DamagedFilesThrowIoErrorsNamingTheFile) {
  const auto good = dir_ / "good.safetensors";
  ml::io::save_safetensors(good, sample());
  const std::string bytes = read_bytes(good);

  expect_io_error(dir_ / "missing.safetensors", "cannot open");

  write_bytes(dir_ / "short.safetensors", "abc");
  expect_io_error(dir_ / "short.safetensors", "too short");

  write_bytes(dir_ / "truncated.safetensors", bytes.substr(0, bytes.size() - 5));
  expect_io_error(dir_ / "truncated.safetensors", "data offsets");

  std::string huge = bytes;
  huge[7] = '\x7f';  // header length far beyond the file
  write_bytes(dir_ / "huge.safetensors", huge);
  expect_io_error(dir_ / "huge.safetensors", "header length");

  std::string garbage = bytes;
  garbage[8] = '#';  // the JSON header no longer parses
  write_bytes(dir_ / "garbage.safetensors", garbage);
  expect_io_error(dir_ / "garbage.safetensors", "not valid JSON");

  std::string dtype = bytes;
  dtype.replace(dtype.find("F32"), 3, "I8 ");
  write_bytes(dir_ / "dtype.safetensors", dtype);
  expect_io_error(dir_ / "dtype.safetensors", "dtype");
}

TEST_F(Safetensors, MetadataReadsTheHeaderAlone) {
  const auto path = dir_ / "with_metadata.safetensors";
  const ml::io::Metadata metadata{{"config", R"({"algorithm":"maml"})"}, {"step", "12"}};
  ml::io::save_safetensors(path, sample(), metadata);
  EXPECT_EQ(ml::io::read_safetensors_metadata(path), metadata);
  EXPECT_EQ(ml::io::read_safetensors_metadata(path), ml::io::inspect_safetensors(path).metadata);

  const auto plain = dir_ / "plain.safetensors";
  ml::io::save_safetensors(plain, sample());
  EXPECT_TRUE(ml::io::read_safetensors_metadata(plain).empty());

  // The tensor data is not read: a file cut inside it still gives its metadata, which
  // a whole load refuses.
  const std::string bytes = read_bytes(path);
  const auto cut = dir_ / "cut.safetensors";
  write_bytes(cut, bytes.substr(0, bytes.size() - 5));
  EXPECT_EQ(ml::io::read_safetensors_metadata(cut), metadata);
  EXPECT_THROW((void)ml::io::inspect_safetensors(cut), ml::IoError);

  // A damaged header is refused with the file's name, as by a whole load.
  const auto expect_refused = [&](const fs::path& file, const std::string& needle) {
    try {
      (void)ml::io::read_safetensors_metadata(file);
      ADD_FAILURE() << file << " was accepted";
    } catch (const ml::IoError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(file.string()), std::string::npos) << what;
      EXPECT_NE(what.find(needle), std::string::npos) << what;
    }
  };
  expect_refused(dir_ / "missing.safetensors", "cannot open");
  std::string garbage = bytes;
  garbage[8] = '#';
  write_bytes(dir_ / "garbage.safetensors", garbage);
  expect_refused(dir_ / "garbage.safetensors", "not valid JSON");
  std::string number = bytes;
  number.replace(number.find("\"12\""), 4, "1234");  // a metadata value that is not a string
  write_bytes(dir_ / "number.safetensors", number);
  expect_refused(dir_ / "number.safetensors", "__metadata__ must map strings to strings");
  write_bytes(dir_ / "header_only.safetensors", bytes.substr(0, 20));
  expect_refused(dir_ / "header_only.safetensors", "header length");
}

TEST_F(Safetensors, RejectsDuplicateNames) {
  ml::nn::ParamDict<float> p;
  p.insert("__metadata__", ml::ones<float>({1}));
  EXPECT_THROW(ml::io::save_safetensors(dir_ / "x.safetensors", p), ml::ValueError);
}

TEST_F(Safetensors, TrainingCheckpointKeepsParametersOptimizerStateAndMetadata) {
  ml::Generator gen(3);
  ml::nn::MLP<double> model({2, 4, 1}, gen);
  ml::optim::Adam<double> adam(model.parameters(), ml::optim::AdamOptions{.lr = 0.1});
  for (auto& p : model.parameters()) p.set_grad(ml::ones_like(p));
  adam.step();
  adam.set_lr(0.1 / 3.0);  // not exactly representable in decimal

  const auto path = dir_ / "train.safetensors";
  ml::io::save_checkpoint(path, ml::io::TrainingCheckpoint<double>{
                                    model.named_parameters(), adam.state(), {{"step", "7"}}});
  const auto loaded = ml::io::load_checkpoint<double>(path);
  EXPECT_EQ(loaded.metadata, (ml::io::Metadata{{"step", "7"}}));
  ASSERT_EQ(loaded.parameters.names(), model.named_parameters().names());
  ASSERT_TRUE(loaded.optimizer.has_value());
  EXPECT_EQ(loaded.optimizer->step, 1);
  EXPECT_EQ(loaded.optimizer->lr, 0.1 / 3.0);
  const auto saved = adam.state();
  ASSERT_EQ(loaded.optimizer->buffers.names(), saved.buffers.names());
  for (const auto& name : saved.buffers.names()) {
    EXPECT_EQ(loaded.optimizer->buffers.at(name).to_vector(), saved.buffers.at(name).to_vector())
        << name;
  }
  // The parameters alone still load into a module (non-strict: the file also holds
  // the optimizer's buffers, which a strict load rejects as unknown names); a
  // parameters-only file loads with no optimizer state.
  ml::nn::MLP<double> other({2, 4, 1}, gen);
  EXPECT_THROW(other.load_parameters(ml::io::load_safetensors<double>(path)), ml::ValueError);
  other.load_parameters(ml::io::load_safetensors<double>(path), ml::nn::LoadMode::kNonStrict);
  EXPECT_EQ(other.parameters()[0].to_vector(), model.parameters()[0].to_vector());
  ml::io::save_safetensors(dir_ / "plain.safetensors", model.named_parameters());
  EXPECT_FALSE(ml::io::load_checkpoint<double>(dir_ / "plain.safetensors").optimizer);
}

TEST_F(Safetensors, TrainingCheckpointRejectsReservedNamesAndBadOptimizerMetadata) {
  ml::nn::ParamDict<float> p;
  p.insert("optimizer.x", ml::ones<float>({1}));
  EXPECT_THROW(ml::io::save_checkpoint(dir_ / "r.safetensors",
                                       ml::io::TrainingCheckpoint<float>{p, std::nullopt, {}}),
               ml::ValueError);
  EXPECT_THROW(ml::io::save_checkpoint(dir_ / "m.safetensors",
                                       ml::io::TrainingCheckpoint<float>{
                                           sample(), std::nullopt, {{"optimizer.lr", "1"}}}),
               ml::ValueError);

  const auto bad = dir_ / "bad.safetensors";
  ml::io::save_safetensors(bad, sample(), {{"optimizer.step", "3x"}, {"optimizer.lr", "0.1"}});
  try {
    (void)ml::io::load_checkpoint<float>(bad);
    ADD_FAILURE() << "no IoError";
  } catch (const ml::IoError& e) {
    EXPECT_NE(std::string(e.what()).find(bad.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("3x"), std::string::npos) << e.what();
  }
  ml::io::save_safetensors(dir_ / "half.safetensors", sample(), {{"optimizer.step", "3"}});
  EXPECT_THROW((void)ml::io::load_checkpoint<float>(dir_ / "half.safetensors"), ml::IoError);
  ml::nn::ParamDict<float> orphan = sample();
  orphan.insert("optimizer.0.exp_avg", ml::ones<float>({1}));
  ml::io::save_safetensors(dir_ / "orphan.safetensors", orphan);
  EXPECT_THROW((void)ml::io::load_checkpoint<float>(dir_ / "orphan.safetensors"), ml::IoError);
}

TEST(MetricsLog, WritesCsvWithAHeaderAndJsonLines) {
  const auto dir = fs::temp_directory_path() / "metalearn_metrics_test";
  fs::remove_all(dir);
  {
    ml::io::MetricsLog csv(dir / "m.csv");
    csv.write({{"step", 1}, {"loss", 0.5}});
    csv.write({{"step", 2}, {"loss", 0.25}});
    EXPECT_THROW(csv.write({{"loss", 1}, {"step", 3}}), ml::ValueError);
    ml::io::MetricsLog jsonl(dir / "m.jsonl");
    jsonl.write({{"step", 1}, {"acc", 0.75}});
  }
  std::ifstream c(dir / "m.csv");
  std::string l1, l2, l3;
  std::getline(c, l1);
  std::getline(c, l2);
  std::getline(c, l3);
  EXPECT_EQ(l1, "step,loss");
  EXPECT_EQ(l2, "1,0.5");
  EXPECT_EQ(l3, "2,0.25");
  std::ifstream j(dir / "m.jsonl");
  std::getline(j, l1);
  EXPECT_EQ(l1, "{\"step\": 1, \"acc\": 0.75}");
  EXPECT_THROW(ml::io::MetricsLog(dir / "m.txt"), ml::ValueError);
  {
    ml::io::MetricsLog resumed(dir / "m.csv", /*append=*/true);
    resumed.write({{"step", 3}, {"loss", 0.125}});
    EXPECT_THROW(resumed.write({{"epoch", 1}, {"loss", 1}}), ml::ValueError);
  }
  std::ifstream c2(dir / "m.csv");
  std::vector<std::string> lines;
  for (std::string line; std::getline(c2, line);) lines.push_back(line);
  EXPECT_EQ(lines, (std::vector<std::string>{"step,loss", "1,0.5", "2,0.25", "3,0.125"}));
  fs::remove_all(dir);
}

}  // namespace
