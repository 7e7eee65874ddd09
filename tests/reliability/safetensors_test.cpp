// Damaged and hostile safetensors files: each is an IoError naming the file and,
// where there is one, the tensor; the file is left as it was and a module that
// would have received the values is unchanged.
#include <cstring>
#include <limits>

#include "reliability/reliability.hpp"

namespace {

using reliability::expect_error;
using reliability::read_bytes;
using reliability::safetensors_bytes;
using reliability::values_of;
using reliability::write_bytes;
namespace ml = metalearn;
namespace fs = std::filesystem;

class HostileSafetensors : public reliability::ScratchDir {
 protected:
  /// Writes the file, expects loading it (as float and as double, and through
  /// inspect_safetensors) to throw IoError with `needle` and the file name, and
  /// checks the file and a module are untouched.
  void expect_rejected(const std::string& header, const std::string& data,
                       const std::string& needle) {
    const fs::path path = dir_ / "hostile.safetensors";
    write_bytes(path, safetensors_bytes(header, data));
    const std::string before = read_bytes(path);
    ml::Generator gen(3);
    ml::nn::Linear<float> model(2, 2, gen);
    const auto values = values_of(model);
    expect_error<ml::IoError>([&] { model.load_parameters(ml::io::load_safetensors<float>(path)); },
                              needle);
    expect_error<ml::IoError>([&] { (void)ml::io::load_safetensors<double>(path); }, path.string());
    expect_error<ml::IoError>([&] { (void)ml::io::inspect_safetensors(path); }, needle);
    EXPECT_EQ(read_bytes(path), before);
    EXPECT_EQ(values_of(model), values);
  }
  static std::string zeros(std::size_t n) { return std::string(n, '\0'); }
};

TEST_F(HostileSafetensors, ElementCountThatWrapsToZero) {
  // The 72-byte file of the report: [2^32, 2^32] wraps to 0 elements unchecked.
  expect_rejected(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"
                  "   ",
                  "", "tensor 'w' has a shape whose size overflows");
}

TEST_F(HostileSafetensors, ByteCountThatOverflows) {
  expect_rejected(R"({"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}})",
                  zeros(8), "tensor 'w' has a shape whose size overflows");
}

TEST_F(HostileSafetensors, DuplicateTensorKey) {
  expect_rejected(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                  R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  zeros(8), "key 'w' appears twice");
}

TEST_F(HostileSafetensors, DuplicateFieldInsideAnEntry) {
  expect_rejected(R"({"w":{"dtype":"F32","shape":[1],"shape":[2],"data_offsets":[0,4]}})", zeros(4),
                  "key 'shape' appears twice");
}

TEST_F(HostileSafetensors, FractionalShapeEntry) {
  expect_rejected(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", zeros(8),
                  "tensor 'w' has shape entry 2.5, which is not a whole number");
}

TEST_F(HostileSafetensors, NegativeShapeEntry) {
  expect_rejected(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,0]}})", "",
                  "tensor 'w' has a negative or too large extent -2");
}

TEST_F(HostileSafetensors, ShapeEntryBeyondIndex) {
  expect_rejected(R"({"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,0]}})",
                  "", "negative or too large extent");
}

TEST_F(HostileSafetensors, ShapeThatIsNotAnArray) {
  expect_rejected(R"({"w":{"dtype":"F32","shape":4,"data_offsets":[0,16]}})", zeros(16),
                  "tensor 'w' has a shape that is not an array");
}

TEST_F(HostileSafetensors, TooManyDimensions) {
  expect_rejected(R"({"w":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})",
                  zeros(4), "tensor 'w' has 9 dimensions");
}

TEST_F(HostileSafetensors, TrailingBytes) {
  expect_rejected(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", zeros(12),
                  "8 trailing bytes after the last tensor");
}

TEST_F(HostileSafetensors, HoleBetweenTensors) {
  expect_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                  R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                  zeros(12), "4 unused bytes before tensor 'b'");
}

TEST_F(HostileSafetensors, OverlappingTensors) {
  expect_rejected(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  zeros(8), "tensors 'a' and 'b' overlap");
}

TEST_F(HostileSafetensors, OffsetsPastTheData) {
  expect_rejected(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", zeros(8),
                  "tensor 'w' has data offsets [8, 12] outside the data section of 8 bytes");
}

TEST_F(HostileSafetensors, ReversedOffsets) {
  expect_rejected(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", zeros(4),
                  "tensor 'w' has data offsets [4, 0]");
}

TEST_F(HostileSafetensors, NegativeOffset) {
  expect_rejected(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", zeros(4),
                  "tensor 'w' has data_offsets [-4,0]");
}

TEST_F(HostileSafetensors, FractionalOffset) {
  expect_rejected(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}})", zeros(4),
                  "expected two non-negative whole numbers");
}

TEST_F(HostileSafetensors, ThreeOffsets) {
  expect_rejected(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", zeros(8),
                  "tensor 'w' has data_offsets [0,4,8]");
}

TEST_F(HostileSafetensors, ByteCountThatDoesNotMatchTheShape) {
  expect_rejected(R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", zeros(8),
                  "tensor 'w' holds 8 bytes, but its shape and dtype need 16");
}

TEST_F(HostileSafetensors, UnsupportedDtype) {
  expect_rejected(R"({"w":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})", zeros(4),
                  "tensor 'w' has unsupported dtype I32");
}

TEST_F(HostileSafetensors, DtypeThatIsNotAString) {
  expect_rejected(R"({"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})", zeros(4),
                  "tensor 'w' has a dtype that is not a string");
}

TEST_F(HostileSafetensors, EntryThatIsNotAnObject) {
  expect_rejected(R"({"w":[1,2,3]})", "", "tensor 'w' is not a JSON object");
}

TEST_F(HostileSafetensors, MissingField) {
  expect_rejected(R"({"w":{"dtype":"F32","shape":[1]}})", zeros(4),
                  "tensor 'w' has a malformed entry");
}

TEST_F(HostileSafetensors, MetadataWithNonStringValues) {
  expect_rejected(R"({"__metadata__":{"step":3}})", "", "__metadata__ must map strings to strings");
}

TEST_F(HostileSafetensors, HeaderLongerThanTheFile) {
  const fs::path path = dir_ / "long.safetensors";
  std::string bytes = safetensors_bytes("{}", "");
  bytes[0] = static_cast<char>(200);
  write_bytes(path, bytes);
  expect_error<ml::IoError>([&] { (void)ml::io::load_safetensors<float>(path); },
                            "header length 200 does not fit a file of 10 bytes");
}

TEST_F(HostileSafetensors, HeaderThatIsNotJson) {
  expect_rejected(R"({"w":{"dtype":)", "", "header is not valid JSON");
}

TEST_F(HostileSafetensors, DoubleValueTooLargeForFloat) {
  const fs::path path = dir_ / "big.safetensors";
  const double big = 1e300;
  std::string data(8, '\0');
  std::memcpy(data.data(), &big, 8);
  write_bytes(path,
              safetensors_bytes(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", data));
  expect_error<ml::IoError>([&] { (void)ml::io::load_safetensors<float>(path); },
                            "tensor 'w' holds 1e+300 at element 0, which does not fit");
  EXPECT_EQ(ml::io::load_safetensors<double>(path).find("w")->item(), big);
}

TEST_F(HostileSafetensors, AWellFormedFileStillLoads) {
  const fs::path path = dir_ / "good.safetensors";
  ml::nn::ParamDict<float> p;
  p.insert("a", ml::full<float>({2}, 1.5f));
  p.insert("empty", ml::zeros<float>({0, 3}));
  p.insert("b", ml::full<float>({}, 2.f));
  ml::io::save_safetensors(path, p);
  const auto back = ml::io::load_safetensors<float>(path);
  EXPECT_EQ(values_of(back), values_of(p));
}

}  // namespace
