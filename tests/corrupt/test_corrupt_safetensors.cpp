// Bad safetensors input: every broken file is built from a valid one, and the reader must throw
// FormatError naming the file, the tensor where there is one, and the problem. The CLI must turn
// it into exactly one line "error: ..." on stderr and exit code 2.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <string>

#include "format/safetensors.h"
#include "testing.h"
#include "util/error.h"

using namespace qllm;
namespace fs = std::filesystem;

namespace {

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// A whole file: length, header as given, then `data_bytes` bytes of data.
std::string file_bytes(const std::string& header, std::size_t data_bytes) {
  return le64(header.size()) + header + std::string(data_bytes, '\x01');
}

// The valid starting point: two F32 tensors, "a" [2, 2] at [0, 16) and "b" [3] at [16, 28).
const std::string kValidHeader =
    R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
    R"("b":{"dtype":"F32","shape":[3],"data_offsets":[16,28]}})";

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

class CorruptSafetensors : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::temp_dir("corrupt-st"); }

  fs::path write(const std::string& name, const std::string& bytes) {
    fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }

  // Opening `p` as a file (and as a TensorSet) throws FormatError whose message contains the path
  // and every one of `parts`.
  void expect_error(const fs::path& p, std::initializer_list<std::string> parts,
                    const std::function<void()>& open) {
    try {
      open();
      ADD_FAILURE() << "no FormatError for " << p;
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(p.string()), std::string::npos) << "message lacks the path: " << msg;
      for (const auto& part : parts)
        EXPECT_NE(msg.find(part), std::string::npos) << "message lacks '" << part << "': " << msg;
    }
  }
  void expect_file_error(const fs::path& p, std::initializer_list<std::string> parts) {
    expect_error(p, parts, [&] { SafetensorsFile f(p); });
    expect_error(p, parts, [&] { TensorSet::open(p); });
  }

  fs::path dir_;
};

}  // namespace

TEST_F(CorruptSafetensors, ValidStartingPointOpens) {
  auto p = write("ok.safetensors", file_bytes(kValidHeader, 28));
  SafetensorsFile f(p);
  EXPECT_EQ(f.tensors().size(), 2u);
}

TEST_F(CorruptSafetensors, ShorterThanTheLengthField) {
  expect_file_error(write("tiny.safetensors", std::string("\x10\0\0", 3)),
                    {"truncated", "3 bytes"});
  expect_file_error(write("zero.safetensors", ""), {"truncated", "0 bytes"});
}

TEST_F(CorruptSafetensors, TruncatedDataSection) {
  auto p = write("short.safetensors", file_bytes(kValidHeader, 20));
  expect_file_error(p, {"tensor 'b'", "past the data section", "truncated"});
}

TEST_F(CorruptSafetensors, HeaderLengthLargerThanTheFile) {
  std::string bytes = file_bytes(kValidHeader, 28);
  bytes.replace(0, 8, le64(kValidHeader.size() + 1000));
  expect_file_error(write("hlen.safetensors", bytes), {"header length", "larger than the file"});
}

TEST_F(CorruptSafetensors, HeaderLengthAboveTheLimit) {
  std::string bytes = file_bytes(kValidHeader, 28);
  bytes.replace(0, 8, le64(uint64_t{1} << 40));
  expect_file_error(write("huge.safetensors", bytes), {"header length", "exceeds the limit"});
}

TEST_F(CorruptSafetensors, InvalidJson) {
  std::string h = kValidHeader.substr(0, kValidHeader.size() - 1);  // drop the closing brace
  expect_file_error(write("json.safetensors", file_bytes(h, 28)), {"not valid JSON"});
  expect_file_error(write("array.safetensors", file_bytes("[1,2]", 0)), {"must be a JSON object"});
}

TEST_F(CorruptSafetensors, UnknownDtype) {
  auto h = replace(kValidHeader, R"("dtype":"F32","shape":[3])", R"("dtype":"F31","shape":[3])");
  expect_file_error(write("dtype.safetensors", file_bytes(h, 28)),
                    {"tensor 'b'", "unknown dtype 'F31'"});
}

TEST_F(CorruptSafetensors, ShapeDoesNotMatchOffsets) {
  auto h = replace(kValidHeader, R"("shape":[2,2])", R"("shape":[2,3])");
  expect_file_error(write("shape.safetensors", file_bytes(h, 28)),
                    {"tensor 'a'", "does not match shape", "expected 24 bytes, got 16"});
}

TEST_F(CorruptSafetensors, OverlappingRanges) {
  auto h = replace(kValidHeader, R"("data_offsets":[16,28])", R"("data_offsets":[8,20])");
  expect_file_error(write("overlap.safetensors", file_bytes(h, 28)),
                    {"tensor 'b'", "overlaps tensor 'a'"});
}

TEST_F(CorruptSafetensors, OffsetsPastTheEnd) {
  auto h = replace(kValidHeader, R"("data_offsets":[16,28])", R"("data_offsets":[100,112])");
  expect_file_error(write("past.safetensors", file_bytes(h, 28)),
                    {"tensor 'b'", "past the data section"});
}

TEST_F(CorruptSafetensors, EndBeforeBegin) {
  auto h = replace(kValidHeader, R"("data_offsets":[16,28])", R"("data_offsets":[28,16])");
  expect_file_error(write("rev.safetensors", file_bytes(h, 28)), {"tensor 'b'", "before begin"});
}

TEST_F(CorruptSafetensors, HugeShapeOverflows) {
  // 2^62 * 8 elements overflow u64; 2^62 * 2 elements fit but their F32 bytes do not.
  auto h1 = replace(kValidHeader, R"("shape":[2,2])", R"("shape":[4611686018427387904,8])");
  expect_file_error(write("ovf1.safetensors", file_bytes(h1, 28)), {"tensor 'a'", "overflows"});
  auto h2 = replace(kValidHeader, R"("shape":[2,2])", R"("shape":[4611686018427387904,2])");
  expect_file_error(write("ovf2.safetensors", file_bytes(h2, 28)), {"tensor 'a'", "overflows"});
  auto h3 = replace(kValidHeader, R"("shape":[2,2])", R"("shape":[-1,2])");
  expect_file_error(write("neg.safetensors", file_bytes(h3, 28)), {"tensor 'a'", "non-negative"});
}

// Printing a deeply nested value in the error message used to overflow the stack.
TEST_F(CorruptSafetensors, DeeplyNestedHeader) {
  const std::size_t depth = 200000;
  const std::string deep = std::string(depth, '[') + std::string(depth, ']');
  auto h1 = replace(kValidHeader, R"("shape":[2,2])", "\"shape\":[" + deep + "]");
  expect_file_error(write("deep1.safetensors", file_bytes(h1, 28)), {"nests deeper"});
  auto h2 = replace(kValidHeader, R"({"format":"pt"})", "{\"format\":" + deep + "}");
  expect_file_error(write("deep2.safetensors", file_bytes(h2, 28)), {"nests deeper"});
}

TEST_F(CorruptSafetensors, DuplicateNames) {
  auto h = replace(kValidHeader, R"("b":{)", R"("a":{)");
  expect_file_error(write("dup.safetensors", file_bytes(h, 28)), {"tensor 'a'", "duplicate"});
}

TEST_F(CorruptSafetensors, MissingFieldsAndBadMetadata) {
  auto h1 = replace(kValidHeader, R"("shape":[3],)", "");
  expect_file_error(write("nofield.safetensors", file_bytes(h1, 28)),
                    {"tensor 'b'", "missing field 'shape'"});
  auto h2 = replace(kValidHeader, R"({"format":"pt"})", R"({"format":1})");
  expect_file_error(write("meta.safetensors", file_bytes(h2, 28)),
                    {"__metadata__", "must be a string"});
}

TEST_F(CorruptSafetensors, DirectoryWithoutWeights) {
  fs::create_directories(dir_ / "empty_model");
  std::ofstream(dir_ / "empty_model" / "config.json") << "{}";
  expect_error(dir_ / "empty_model", {"no weights"},
               [&] { TensorSet::open(dir_ / "empty_model"); });
}

TEST_F(CorruptSafetensors, IndexNamesAMissingShard) {
  fs::path m = dir_ / "sharded";
  fs::create_directories(m);
  std::ofstream(m / "model-00001-of-00002.safetensors", std::ios::binary)
      << file_bytes(kValidHeader, 28);
  std::ofstream(m / "model.safetensors.index.json")
      << R"({"metadata":{"total_size":40},"weight_map":{"a":"model-00001-of-00002.safetensors",)"
         R"("b":"model-00001-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}})";
  expect_error(m / "model-00002-of-00002.safetensors", {"cannot open"},
               [&] { TensorSet::open(m); });
}

TEST_F(CorruptSafetensors, IndexNamesAMissingTensor) {
  fs::path m = dir_ / "sharded2";
  fs::create_directories(m);
  std::ofstream(m / "model-00001-of-00001.safetensors", std::ios::binary)
      << file_bytes(kValidHeader, 28);
  std::ofstream(m / "model.safetensors.index.json")
      << R"({"weight_map":{"a":"model-00001-of-00001.safetensors","b":"model-00001-of-00001.safetensors",)"
         R"("zzz":"model-00001-of-00001.safetensors"}})";
  expect_error(m / "model.safetensors.index.json", {"tensor 'zzz'", "missing"},
               [&] { TensorSet::open(m); });
}

TEST_F(CorruptSafetensors, IndexEscapingTheDirectory) {
  fs::path m = dir_ / "sharded3";
  fs::create_directories(m);
  std::ofstream(m / "model.safetensors.index.json")
      << R"({"weight_map":{"a":"../ok.safetensors"}})";
  expect_error(m / "model.safetensors.index.json", {"tensor 'a'", "same directory"},
               [&] { TensorSet::open(m); });
}

TEST_F(CorruptSafetensors, CliPrintsOneErrorLineAndExits2) {
  auto h = replace(kValidHeader, R"("dtype":"F32","shape":[3])", R"("dtype":"F31","shape":[3])");
  for (const fs::path& p : {write("cli-dtype.safetensors", file_bytes(h, 28)),
                            write("cli-short.safetensors", file_bytes(kValidHeader, 20)),
                            write("cli-tiny.safetensors", "abc"), dir_ / "does-not-exist"}) {
    auto r = test::run_qllm("inspect '" + p.string() + "'");
    EXPECT_EQ(r.exit_code, 2) << p;
    EXPECT_TRUE(r.err.starts_with("error: ")) << r.err;
    EXPECT_NE(r.err.find(p.string()), std::string::npos) << r.err;
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}
