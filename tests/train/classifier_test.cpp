// Saved MatchingClassifiers: a round trip gives the same probabilities (with and
// without full context embeddings, ConvNet4 with running batch-norm statistics), and
// a wrong file, a wrong architecture or a non-finite classifier is refused by name
// with nothing overwritten.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <metalearn/metalearn.hpp>
#include <string>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;
namespace fs = std::filesystem;

namespace {

class SavedClassifier : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("metalearn_clf_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static ml::nn::ConvNet4Options small() {
    return ml::nn::ConvNet4Options{
        .hidden = 4,
        .image_size = 16,
        .batch_norm = ml::nn::BatchNormOptions{.mode = ml::nn::BatchNormMode::kRunning}};
  }
  static ml::data::Task<double> episode(std::uint64_t seed) {
    ml::data::ProceduralGlyphs glyphs({.split = ml::data::Split::kTest, .image_size = 16});
    ml::data::EpisodicSampler<double> episodes(glyphs, {.ways = 3, .shots = 2, .queries = 3});
    ml::Generator gen(seed);
    return episodes.sample(gen);
  }
  // A trained-looking learner: a few steps move the parameters and the running statistics.
  static std::unique_ptr<alg::MatchingNet<double>> trained(ml::Generator& gen, bool context) {
    auto options = alg::MatchingNetOptions<double>{.scale = 4.0, .embedding = small()};
    if (context) {
      options.full_context_dim = 4;
      options.full_context_steps = 3;
    }
    auto net = std::make_unique<alg::MatchingNet<double>>(gen, options);
    for (std::uint64_t s = 0; s < 3; ++s) (void)net->meta_step({episode(10 + s)});
    return net;
  }

  fs::path dir_;
};

TEST_F(SavedClassifier, RoundTripsWithAndWithoutFullContext) {
  for (const bool context : {false, true}) {
    ml::Generator gen(1);
    const auto net = trained(gen, context);
    const auto task = episode(2);
    const auto clf = net->adapt(task);
    const fs::path path = dir_ / "clf.safetensors";
    ml::train::save_classifier(clf, path);
    ml::Generator other(99);  // the architecture's own values do not matter
    const ml::nn::ConvNet4<double> architecture(small(), other);
    const auto loaded = ml::train::load_matching_classifier<double>(path, architecture);
    EXPECT_EQ(loaded.ways(), clf.ways());
    EXPECT_EQ(loaded.labels(), clf.labels());
    EXPECT_EQ(loaded.context() != nullptr, context);
    const auto a = clf.log_probs(task.query_x);
    const auto b = loaded.log_probs(task.query_x);
    ASSERT_EQ(a.shape(), b.shape());
    for (ml::Index i = 0; i < a.numel(); ++i) EXPECT_EQ(a.data()[i], b.data()[i]) << context;
  }
}

TEST_F(SavedClassifier, RefusesOtherFilesAndArchitectures) {
  ml::Generator gen(3);
  const auto net = trained(gen, true);
  const auto clf = net->adapt(episode(4));
  const fs::path path = dir_ / "clf.safetensors";
  ml::train::save_classifier(clf, path);
  // Another architecture: a different type, then the same type with other sizes.
  const ml::nn::MLP<double> mlp({4, 4}, gen);
  EXPECT_THROW((void)ml::train::load_matching_classifier<double>(path, mlp), ml::ValueError);
  auto wider_options = small();
  wider_options.hidden = 8;
  const ml::nn::ConvNet4<double> wider(wider_options, gen);
  EXPECT_THROW((void)ml::train::load_matching_classifier<double>(path, wider), ml::Error);
  // A safetensors file that is not a classifier.
  const fs::path params = dir_ / "params.safetensors";
  ml::io::save(net->model(), params);
  const ml::nn::ConvNet4<double> architecture(small(), gen);
  try {
    (void)ml::train::load_matching_classifier<double>(params, architecture);
    FAIL() << "expected an IoError";
  } catch (const ml::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("params.safetensors"), std::string::npos) << e.what();
  }
  // A damaged file.
  std::ofstream(dir_ / "cut.safetensors", std::ios::binary) << "\x10\x00\x00";
  EXPECT_THROW(
      (void)ml::train::load_matching_classifier<double>(dir_ / "cut.safetensors", architecture),
      ml::IoError);
}

TEST_F(SavedClassifier, NeverWritesNonFiniteValuesOverAGoodFile) {
  ml::Generator gen(5);
  const auto net = trained(gen, false);
  const auto task = episode(6);
  const fs::path path = dir_ / "clf.safetensors";
  ml::train::save_classifier(net->adapt(task), path);
  const auto size = fs::file_size(path);
  // A classifier whose support embeddings hold a NaN.
  auto support = net->adapt(task).support_embeddings().clone();
  support.data()[0] = std::numeric_limits<double>::quiet_NaN();
  const alg::MatchingClassifier<double> bad(net->model().clone(), nullptr, support,
                                            net->adapt(task).labels(), ml::Distance::kCosine, 4.0);
  EXPECT_THROW(ml::train::save_classifier(bad, path), ml::NonFiniteError);
  EXPECT_EQ(fs::file_size(path), size);
  const ml::nn::ConvNet4<double> architecture(small(), gen);
  EXPECT_NO_THROW((void)ml::train::load_matching_classifier<double>(path, architecture));
}

}  // namespace
