// The safetensors writer against files written by Python's safetensors and huggingface_hub
// (tests/data/fixtures, made by tools/make_fixtures.py): reading them gives the values the script
// wrote, and re-writing them through qllm gives the same bytes.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "format/convert.h"
#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "testing.h"
#include "util/error.h"

using namespace qllm;
namespace fs = std::filesystem;

namespace {

fs::path fixtures() {
  return test::test_data_dir() / "fixtures";
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// WriteOptions set by name: a designated initializer that leaves members out draws GCC's
// -Wmissing-field-initializers.
WriteOptions options(std::map<std::string, std::string> metadata, uint64_t max_shard_bytes = 0) {
  WriteOptions o;
  o.metadata = std::move(metadata);
  o.max_shard_bytes = max_shard_bytes;
  return o;
}
WriteOptions sharded_at(uint64_t max_shard_bytes) { return options({}, max_shard_bytes); }

// A writer entry that copies a tensor of an open file.
TensorToWrite copy_of(const TensorRef& t) {
  return {t.name(), t.dtype(), t.shape(),
          [t](std::span<std::byte> dst) { std::memcpy(dst.data(), t.bytes.data(), dst.size()); }};
}

template <typename T>
std::vector<T> values(const TensorRef& t) {
  std::vector<T> v(t.numel());
  std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  return v;
}

// The insertion order of the dict in tools/make_fixtures.py: the order huggingface_hub shards in.
const std::vector<std::string> kPythonOrder = {
    "f32", "f64.scalar", "f16",   "bf16",           "f8_e4m3",        "i64", "i32", "i16", "i8",
    "u8",  "bool",       "empty", "layer.1.weight", "layer.10.weight"};

std::vector<uint8_t> u8_tensor(std::size_t n, uint8_t v) {
  return std::vector<uint8_t>(n, v);
}

TensorToWrite u8_entry(const std::string& name, int64_t n) {
  return {name, DType::U8, {n}, [n](std::span<std::byte> d) {
            std::memset(d.data(), static_cast<int>(n), d.size());
          }};
}

}  // namespace

// ---- reading what Python wrote ----

TEST(SafetensorsWriter, ReadsPythonWrittenValues) {
  SafetensorsFile f(fixtures() / "python_written.safetensors");
  EXPECT_EQ(f.tensors().size(), 14u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  auto ref = [&](const char* n) {
    const TensorDesc* d = f.find(n);
    EXPECT_NE(d, nullptr) << n;
    return f.ref(*d);
  };
  EXPECT_EQ(ref("f32").to_f32(), (std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f}));
  EXPECT_EQ(ref("f32").shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(ref("f64.scalar").shape().empty());
  EXPECT_EQ(ref("f64.scalar").numel(), 1u);
  EXPECT_EQ(values<double>(ref("f64.scalar")), std::vector<double>{3.25});
  EXPECT_EQ(ref("f16").to_f32(), (std::vector<float>{1.0f, -2.0f, 0.5f, 65504.0f}));
  EXPECT_EQ(ref("bf16").to_f32(), (std::vector<float>{1.0f, -2.0f, 3.140625f}));
  EXPECT_EQ(ref("f8_e4m3").dtype(), DType::F8_E4M3);
  EXPECT_EQ(ref("f8_e4m3").to_f32(), (std::vector<float>{1.0f, -448.0f, 0.015625f}));
  EXPECT_EQ(values<int64_t>(ref("i64")), (std::vector<int64_t>{-1, int64_t{1} << 40}));
  EXPECT_EQ(values<int32_t>(ref("i32")), (std::vector<int32_t>{7, -7}));
  EXPECT_EQ(values<int16_t>(ref("i16")), (std::vector<int16_t>{-32768, 32767}));
  EXPECT_EQ(values<int8_t>(ref("i8")), (std::vector<int8_t>{-128, 127, 0}));
  EXPECT_EQ(values<uint8_t>(ref("u8")), (std::vector<uint8_t>{0, 255}));
  EXPECT_EQ(values<uint8_t>(ref("bool")), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(ref("empty").shape(), (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(ref("empty").bytes.size(), 0u);
}

// ---- writing what Python writes ----

TEST(SafetensorsWriter, RewriteOfPythonFileIsByteIdentical) {
  const fs::path src = fixtures() / "python_written.safetensors";
  const fs::path out = test::temp_dir("stw-rewrite") / "out.safetensors";
  {
    SafetensorsFile f(src);
    std::vector<TensorToWrite> ts;
    // Reverse the input order: the layout must not depend on it.
    for (auto it = f.tensors().rbegin(); it != f.tensors().rend(); ++it)
      ts.push_back(copy_of(f.ref(*it)));
    write_safetensors(out, std::move(ts), options(f.metadata()));
  }
  const std::string a = slurp(src), b = slurp(out);
  EXPECT_EQ(a.size(), b.size());
  EXPECT_TRUE(a == b) << "qllm's file differs from safetensors.numpy.save_file's";
}

TEST(SafetensorsWriter, ShardedRewriteMatchesHuggingfaceHubSplit) {
  const fs::path ref_dir = fixtures() / "python_sharded";
  const fs::path out = test::temp_dir("stw-shards") / "model";
  std::vector<fs::path> written;
  {
    SafetensorsFile f(fixtures() / "python_written.safetensors");
    std::vector<TensorToWrite> ts;
    for (const auto& n : kPythonOrder) ts.push_back(copy_of(f.ref(*f.find(n))));
    written = write_model_weights(out, std::move(ts),
                                  options({{"format", "pt"}}, 64));
  }
  std::vector<std::string> names;
  for (const auto& p : written) names.push_back(p.filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{
                       "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                       "model-00003-of-00003.safetensors", "model.safetensors.index.json"}));
  for (const auto& n : names) {
    ASSERT_TRUE(fs::exists(ref_dir / n)) << n;
    EXPECT_TRUE(slurp(ref_dir / n) == slurp(out / n))
        << n << " differs from the Python-written one";
  }
  // And the set reads back as one checkpoint.
  auto set = TensorSet::open(out);
  EXPECT_EQ(set.all().size(), kPythonOrder.size());
  EXPECT_EQ(set.get("layer.10.weight").to_f32(), (std::vector<float>(4, -0.25f)));
}

// huggingface_hub's documented example: with a 10GB limit, tensors of [6, 6, 2, 6, 2, 2] GB are
// sharded as [6], [6+2], [6+2+2] (scaled down here to bytes).
TEST(SafetensorsWriter, ShardingFollowsHuggingfaceHubExample) {
  const fs::path out = test::temp_dir("stw-hubdoc");
  std::vector<TensorToWrite> ts;
  const int64_t sizes[] = {6, 6, 2, 6, 2, 2};
  for (int i = 0; i < 6; ++i) ts.push_back(u8_entry("t" + std::to_string(i), sizes[i]));
  auto files = write_model_weights(out, std::move(ts), sharded_at(10));
  ASSERT_EQ(files.size(), 4u);  // 3 shards + index
  auto set = TensorSet::open(out);
  auto shard_of = [&](const char* n) { return set.get(n).file->filename().string(); };
  EXPECT_EQ(shard_of("t0"), "model-00001-of-00003.safetensors");
  EXPECT_EQ(shard_of("t1"), "model-00002-of-00003.safetensors");
  EXPECT_EQ(shard_of("t2"), "model-00002-of-00003.safetensors");
  EXPECT_EQ(shard_of("t3"), "model-00003-of-00003.safetensors");
  EXPECT_EQ(shard_of("t5"), "model-00003-of-00003.safetensors");
}

// "If one of the model's tensor is bigger than max_shard_size, it will end up in its own shard",
// which huggingface_hub appends at once, before the shard still being filled.
TEST(SafetensorsWriter, OversizedTensorGetsItsOwnShard) {
  const fs::path out = test::temp_dir("stw-big");
  std::vector<TensorToWrite> ts{u8_entry("a", 3), u8_entry("big", 20), u8_entry("c", 3)};
  write_model_weights(out, std::move(ts), sharded_at(10));
  auto set = TensorSet::open(out);
  EXPECT_EQ(set.get("big").file->filename(), "model-00001-of-00002.safetensors");
  EXPECT_EQ(set.get("a").file->filename(), "model-00002-of-00002.safetensors");
  EXPECT_EQ(set.get("c").file->filename(), "model-00002-of-00002.safetensors");
  EXPECT_EQ(values<uint8_t>(set.get("big")), u8_tensor(20, 20));
}

TEST(SafetensorsWriter, UnshardedDirectoryReplacesStaleShards) {
  const fs::path out = test::temp_dir("stw-stale");
  write_model_weights(out, {u8_entry("a", 8), u8_entry("b", 8)}, sharded_at(8));
  ASSERT_TRUE(fs::exists(out / "model.safetensors.index.json"));
  auto files = write_model_weights(out, {u8_entry("a", 8), u8_entry("b", 8)}, {});
  EXPECT_EQ(files, std::vector<fs::path>{out / "model.safetensors"});
  EXPECT_FALSE(fs::exists(out / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(out / "model-00001-of-00002.safetensors"));
  EXPECT_EQ(TensorSet::open(out).all().size(), 2u);
}

// transformers' from_pretrained takes model.safetensors when a directory also holds an index.
TEST(SafetensorsWriter, DirectoryWithBothLayoutsReadsTheSingleFile) {
  const fs::path out = test::temp_dir("stw-both");
  write_model_weights(out, {u8_entry("a", 8), u8_entry("b", 8)}, sharded_at(8));
  write_safetensors(out / "model.safetensors", {u8_entry("only", 2)});
  auto set = TensorSet::open(out);
  ASSERT_EQ(set.all().size(), 1u);
  EXPECT_EQ(set.all()[0].name(), "only");
}

// huggingface_hub parse_size_to_int's docstring: "5MB" -> 5000000; units are powers of 10.
TEST(SafetensorsWriter, ParsesShardSizesLikeHuggingfaceHub) {
  EXPECT_EQ(parse_shard_size("5MB"), 5000000u);
  EXPECT_EQ(parse_shard_size("50GB"), 50000000000u);
  EXPECT_EQ(parse_shard_size("1.5kb"), 1500u);
  EXPECT_EQ(parse_shard_size(" 2 TB "), 2000000000000u);
  EXPECT_EQ(parse_shard_size("4096"), 4096u);
  EXPECT_THROW(parse_shard_size("5GiB"), FormatError);
  EXPECT_THROW(parse_shard_size("GB"), FormatError);
  EXPECT_THROW(parse_shard_size("-1MB"), FormatError);
  EXPECT_THROW(parse_shard_size(""), FormatError);
}

// ---- safety ----

TEST(SafetensorsWriter, RefusesToOverwriteAMappedInput) {
  const fs::path dir = test::temp_dir("stw-mapped");
  const fs::path p = dir / "m.safetensors";
  write_safetensors(p, {u8_entry("a", 4)});
  const std::string before = slurp(p);
  SafetensorsFile in(p);
  try {
    write_safetensors(p, {copy_of(in.ref(in.tensors()[0]))});
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("being read"), std::string::npos) << e.what();
  }
  EXPECT_EQ(slurp(p), before);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST(SafetensorsWriter, LeavesNoPartialFileOnError) {
  const fs::path dir = test::temp_dir("stw-partial");
  const fs::path p = dir / "m.safetensors";
  std::vector<TensorToWrite> ts{u8_entry("a", 4), {"b", DType::F32, {2}, [](std::span<std::byte>) {
                                                     throw FormatError("source went away");
                                                   }}};
  EXPECT_THROW(write_safetensors(p, std::move(ts)), FormatError);
  EXPECT_TRUE(fs::is_empty(dir)) << "temporary file left behind";
}

TEST(SafetensorsWriter, RejectsDuplicateAndOverflowingTensors) {
  const fs::path dir = test::temp_dir("stw-bad");
  EXPECT_THROW(write_safetensors(dir / "d.safetensors", {u8_entry("a", 1), u8_entry("a", 2)}),
               FormatError);
  EXPECT_THROW(
      write_safetensors(dir / "o.safetensors", {{"x", DType::F32, {int64_t{1} << 62, 8}, nullptr}}),
      FormatError);
  EXPECT_TRUE(fs::is_empty(dir));
}

TEST(SafetensorsWriter, EmptyFileMatchesSafetensorsLayout) {
  // save_file({}) writes the 8-byte length 8 and "{}" padded with spaces to 8 bytes.
  const fs::path p = test::temp_dir("stw-empty") / "e.safetensors";
  write_safetensors(p, {});
  EXPECT_EQ(slurp(p), std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
  EXPECT_TRUE(SafetensorsFile(p).tensors().empty());
}
