// `qllm quantize` against real optimum-quanto output (tests/data/goldens/quanto, made by
// tools/golden/make_goldens.py with optimum-quanto 0.2.7: quantize(weights=..., exclude='lm_head')
// + save_pretrained). Tensor for tensor: the same key names, dtypes and shapes; integer data
// bit-exact (mismatches are counted per element, rounding ties included: the target is 0);
// scales and shifts byte-identical; every float tensor copied bit for bit; quanto_qmap.json
// byte-identical; tie_word_embeddings as quanto saves it.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "format/safetensors.h"
#include "quant/packing.h"
#include "testing.h"

namespace fs = std::filesystem;
using namespace qllm;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Case {
  const char* model;
  const char* qtype;  // quanto name, the golden folder suffix
  const char* weights;
};

class QuantoExact : public ::testing::TestWithParam<Case> {};

// Elements that differ between two packed (planar) U8 tensors of the same shape, after unpacking.
uint64_t packed_mismatches(const TensorRef& a, const TensorRef& b, int bits, int64_t n_groups) {
  const int64_t cols = a.shape()[1];
  std::vector<uint8_t> ua(n_groups * cols), ub(n_groups * cols);
  unpack_planar(reinterpret_cast<const uint8_t*>(a.bytes.data()), n_groups, cols, bits, ua.data());
  unpack_planar(reinterpret_cast<const uint8_t*>(b.bytes.data()), n_groups, cols, bits, ub.data());
  uint64_t n = 0;
  for (std::size_t i = 0; i < ua.size(); ++i) n += ua[i] != ub[i];
  return n;
}

TEST_P(QuantoExact, TensorForTensor) {
  const Case c = GetParam();
  const fs::path base = test::test_data_dir() / "goldens" / c.model;
  const fs::path golden = test::test_data_dir() / "goldens" / "quanto" / fmt::format("{}-{}", c.model, c.qtype);
  ASSERT_TRUE(fs::exists(golden / "model.safetensors")) << golden;
  const fs::path out = test::temp_dir(fmt::format("quanto-exact-{}-{}", c.model, c.qtype)) / "q";
  auto r = test::run_qllm(fmt::format("quantize '{}' '{}' --weights {} --exclude lm_head --json",
                                      base.string(), out.string(), c.weights));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  const TensorSet ours = TensorSet::open(out), ref = TensorSet::open(golden);
  std::vector<std::string> our_names, ref_names;
  for (const auto& t : ours.all()) our_names.push_back(t.name());
  for (const auto& t : ref.all()) ref_names.push_back(t.name());
  std::sort(our_names.begin(), our_names.end());
  std::sort(ref_names.begin(), ref_names.end());
  ASSERT_EQ(our_names, ref_names);

  uint64_t int_values = 0, int_mismatches = 0, other_mismatches = 0;
  for (const auto& name : ref_names) {
    const TensorRef a = ours.get(name), b = ref.get(name);
    ASSERT_EQ(dtype_name(a.dtype()), dtype_name(b.dtype())) << name;
    ASSERT_EQ(a.shape(), b.shape()) << name;
    const bool packed = name.ends_with("._data._data");
    if (packed) {
      const std::string weight = name.substr(0, name.size() - std::strlen("._data._data"));
      const int64_t n_groups = ref.get(weight + "._scale").shape()[0];
      const int bits = std::string(c.qtype) == "qint2" ? 2 : 4;
      int_values += n_groups * a.shape()[1];
      const uint64_t m = packed_mismatches(a, b, bits, n_groups);
      int_mismatches += m;
      EXPECT_EQ(m, 0u) << name << ": " << m << " quantized values differ";
    } else if (name.ends_with(".weight._data")) {
      uint64_t m = 0;
      for (std::size_t i = 0; i < a.bytes.size(); ++i) m += a.bytes[i] != b.bytes[i];
      int_values += a.bytes.size();
      int_mismatches += m;
      EXPECT_EQ(m, 0u) << name << ": " << m << " quantized values differ";
    } else {
      const bool same = a.bytes.size() == b.bytes.size() &&
                        std::memcmp(a.bytes.data(), b.bytes.data(), a.bytes.size()) == 0;
      other_mismatches += !same;
      EXPECT_TRUE(same) << name << " differs";
    }
  }
  std::printf("[ quanto   ] %s-%s: %llu quantized values, %llu differ; %zu tensors, %llu other differ\n", c.model,
              c.qtype, static_cast<unsigned long long>(int_values), static_cast<unsigned long long>(int_mismatches),
              ref_names.size(), static_cast<unsigned long long>(other_mismatches));

  // With one shard the whole file is byte-identical (header layout and metadata included).
  EXPECT_TRUE(slurp(out / "model.safetensors") == slurp(golden / "model.safetensors"));
  // The safetensors metadata quanto (transformers) writes.
  EXPECT_EQ(ours.files()[0]->metadata(), ref.files()[0]->metadata());
  // quanto_qmap.json: the same bytes.
  EXPECT_EQ(slurp(out / "quanto_qmap.json"), slurp(golden / "quanto_qmap.json"));
  // config.json: ours is the input's, with tie_word_embeddings as quanto saves it.
  auto ours_cfg = nlohmann::json::parse(slurp(out / "config.json"));
  auto ref_cfg = nlohmann::json::parse(slurp(golden / "config.json"));
  EXPECT_EQ(ours_cfg.value("tie_word_embeddings", false), ref_cfg.value("tie_word_embeddings", false));
  EXPECT_EQ(slurp(out / "config.json"), slurp(base / "config.json"));
  fs::remove_all(out.parent_path());
}

INSTANTIATE_TEST_SUITE_P(
    Goldens, QuantoExact,
    ::testing::Values(Case{"qwen2", "qint8", "int8"}, Case{"qwen2", "qint4", "int4"}, Case{"qwen2", "qint2", "int2"},
                      Case{"qwen2", "qfloat8", "float8"}, Case{"llama", "qint8", "int8"},
                      Case{"llama", "qint4", "int4"}, Case{"llama", "qint2", "int2"},
                      Case{"llama", "qfloat8", "float8"}, Case{"llama-f32", "qint8", "int8"},
                      Case{"llama-f32", "qint4", "int4"}, Case{"llama-f32", "qint2", "int2"},
                      Case{"llama-f32", "qfloat8", "float8"}),
    [](const ::testing::TestParamInfo<Case>& i) {
      std::string n = fmt::format("{}_{}", i.param.model, i.param.qtype);
      for (auto& ch : n)
        if (ch == '-') ch = '_';
      return n;
    });

}  // namespace
