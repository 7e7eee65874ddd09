#pragma once
// Shared helpers of the reliability catalogue: a scratch directory per test, file
// bytes and directory listings to compare before and after, the values of a
// module's state, hand-made safetensors files, and a check of the exact type and
// a key part of the message of an expected error.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <metalearn/metalearn.hpp>
#include <set>
#include <string>
#include <typeinfo>
#include <vector>

namespace reliability {

namespace ml = metalearn;
namespace fs = std::filesystem;

/// A fresh directory for the current test, removed afterwards.
class ScratchDir : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           (std::string("metalearn_reliability_") + info->test_suite_name() + "_" + info->name() +
            "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

inline std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

/// The names of the files in `dir`.
inline std::set<std::string> listing(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

/// A safetensors file: the 8-byte little-endian header length, `header`, `data`.
inline std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>(n >> (8 * i));
  return out + header + data;
}

/// Every value of every tensor of `dict`, in order.
template <class T>
std::vector<std::vector<T>> values_of(const ml::nn::ParamDict<T>& dict) {
  std::vector<std::vector<T>> out;
  for (const auto& [name, t] : dict) out.push_back(t.to_vector());
  return out;
}

template <class T>
std::vector<std::vector<T>> values_of(const ml::nn::Module<T>& m) {
  auto out = values_of(m.named_parameters());
  for (auto& v : values_of(m.named_buffers())) out.push_back(std::move(v));
  return out;
}

/// The step, learning rate and buffer values of an optimizer state.
template <class T>
std::vector<std::vector<T>> state_of(const ml::optim::OptimizerState<T>& s) {
  auto out = values_of(s.buffers);
  out.push_back({static_cast<T>(s.step), static_cast<T>(s.lr)});
  return out;
}

/// Runs `f` and expects it to throw exactly E (not a subclass, not a base) with
/// `needle` in its message.
template <class E>
void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
  } catch (const ml::Error& e) {
    EXPECT_EQ(typeid(e), typeid(E)) << "threw " << typeid(e).name() << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message '" << e.what() << "' lacks '" << needle << "'";
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-metalearn exception: " << e.what();
    return;
  }
  ADD_FAILURE() << "did not throw";
}

}  // namespace reliability
