// `qllm quantize` / `qllm absmax` behaviour at the command line: refusals, warnings, outputs
// beyond the goldens (quantized lm_head of a tied model, GPT-2 Conv1D, sharding, --force).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "runtime/model.h"
#include "runtime/session.h"
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

fs::path golden(const char* name) { return test::test_data_dir() / "goldens" / name; }

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

}  // namespace

TEST(QuantoCli, RefusesExistingOutputUnlessForced) {
  const auto tmp = test::temp_dir("qcli-force");
  fs::create_directories(tmp / "out");
  std::ofstream(tmp / "out" / "keep.txt") << "x";
  auto r = test::run_qllm(fmt::format("quantize {} {} -w int8", q(golden("llama")), q(tmp / "out")));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("already exists (use --force"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(tmp / "out" / "keep.txt"));
  r = test::run_qllm(fmt::format("quantize {} {} -w int8 --force", q(golden("llama")), q(tmp / "out")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(tmp / "out" / "keep.txt"));
  EXPECT_TRUE(fs::exists(tmp / "out" / "quanto_qmap.json"));
  // No temporary directories are left beside the output.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(tmp)) entries += e.path().filename() != "out";
  EXPECT_EQ(entries, 0);
  fs::remove_all(tmp);
}

TEST(QuantoCli, RefusesOutputInsideOrEqualToInput) {
  const auto tmp = test::temp_dir("qcli-same");
  fs::copy(golden("llama"), tmp / "m");
  for (auto out : {tmp / "m", tmp / "m" / "sub", tmp / "m" / "."}) {
    auto r = test::run_qllm(fmt::format("quantize {} {} -w int8 --force", q(tmp / "m"), q(out)));
    EXPECT_EQ(r.exit_code, 2) << out;
    EXPECT_NE(r.err.find("input directory"), std::string::npos) << r.err;
  }
  // The parent of the input as output (with --force) would delete the input.
  auto r = test::run_qllm(fmt::format("quantize {} {} -w int8 --force", q(tmp / "m"), q(tmp)));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(fs::exists(tmp / "m" / "model.safetensors"));
  EXPECT_EQ(slurp(tmp / "m" / "model.safetensors"), slurp(golden("llama") / "model.safetensors"));
  fs::remove_all(tmp);
}

TEST(QuantoCli, UnknownTypeListsValidOnes) {
  auto r = test::run_qllm(fmt::format("quantize {} /nonexistent -w int3", q(golden("llama"))));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("int8, int4, int2, float8"), std::string::npos) << r.err;
  r = test::run_qllm(fmt::format("quantize {} /nonexistent -w int8 --optimizer hqq", q(golden("llama"))));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("does not apply"), std::string::npos) << r.err;
}

TEST(QuantoCli, PatternMatchingNothingWarns) {
  const auto tmp = test::temp_dir("qcli-warn");
  auto r = test::run_qllm(fmt::format("quantize {} {} -w int4 --exclude lm_head --exclude 'nothing.*' "
                                      "--include 'model.layers.1.*' --json",
                                      q(golden("llama")), q(tmp / "o")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: --exclude nothing.* matches no module"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("--exclude lm_head matches"), std::string::npos) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["layers"].size(), 7u);  // the 7 Linears of layer 1 only
  for (const auto& l : j["layers"]) EXPECT_EQ(l["module"].get<std::string>().rfind("model.layers.1.", 0), 0u);
  fs::remove_all(tmp);
}

TEST(QuantoCli, NonFiniteWeightIsAnErrorNamingTheTensor) {
  const auto tmp = test::temp_dir("qcli-nan");
  fs::create_directories(tmp / "m");
  fs::copy_file(golden("llama-f32") / "config.json", tmp / "m" / "config.json");
  const TensorSet ts = TensorSet::open(golden("llama-f32"));
  std::vector<TensorToWrite> tensors;
  for (const auto& t : ts.all()) {
    const bool poison = t.name() == "model.layers.1.mlp.up_proj.weight";
    tensors.push_back({t.name(), t.dtype(), t.shape(), [t, poison](std::span<std::byte> out) {
                         std::memcpy(out.data(), t.bytes.data(), out.size());
                         if (poison) {
                           const float nan = NAN;
                           std::memcpy(out.data() + 4 * (3 * 64 + 5), &nan, 4);
                         }
                       }});
  }
  write_safetensors(tmp / "m" / "model.safetensors", std::move(tensors));
  auto r = test::run_qllm(fmt::format("quantize {} {} -w int8", q(tmp / "m"), q(tmp / "o")));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("tensor 'model.layers.1.mlp.up_proj.weight': non-finite weight nan at [3, 5]"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(tmp / "o"));
  fs::remove_all(tmp);
}

TEST(QuantoCli, QuantizedLmHeadUntiesAndRuns) {
  // quanto's default (no exclude) quantizes lm_head too; for a tied model it saves
  // tie_word_embeddings false and the head under lm_head.weight._data.
  const auto tmp = test::temp_dir("qcli-head");
  auto r = test::run_qllm(fmt::format("quantize {} {} -w int8", q(golden("llama")), q(tmp / "o")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto cfg = nlohmann::json::parse(slurp(tmp / "o" / "config.json"));
  EXPECT_EQ(cfg["tie_word_embeddings"], false);
  const TensorSet ts = TensorSet::open(tmp / "o");
  EXPECT_TRUE(ts.contains("lm_head.weight._data"));
  EXPECT_TRUE(ts.contains("model.embed_tokens.weight"));
  // Only that one byte range of config.json changed.
  const std::string before = slurp(golden("llama") / "config.json");
  std::string expect = before;
  expect.replace(expect.find("\"tie_word_embeddings\": true"), 27, "\"tie_word_embeddings\": false");
  EXPECT_EQ(slurp(tmp / "o" / "config.json"), expect);
  auto m = Model::load(tmp / "o");
  Session s(*m, 4);
  const float* l = s.forward(std::vector<int32_t>{1, 5, 7}, false);
  for (int64_t v = 0; v < m->config().n_vocab; ++v) ASSERT_TRUE(std::isfinite(l[v]));
  fs::remove_all(tmp);
}

TEST(QuantoCli, Gpt2Conv1dIsQuantizedInLinearLayoutAndRuns) {
  const auto tmp = test::temp_dir("qcli-gpt2");
  auto r = test::run_qllm(fmt::format("quantize {} {} -w int8 --exclude lm_head", q(golden("gpt2")), q(tmp / "o")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("optimum-quanto cannot load"), std::string::npos) << r.err;
  const TensorSet in = TensorSet::open(golden("gpt2")), ts = TensorSet::open(tmp / "o");
  // c_attn is Conv1D [n_in, n_out] = [32, 96] on disk; quantized it is stored [n_out, n_in].
  const auto w = in.find("transformer.h.0.attn.c_attn.weight");
  ASSERT_NE(w, nullptr);
  const auto d = ts.find("transformer.h.0.attn.c_attn.weight._data");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->shape, (std::vector<int64_t>{w->shape[1], w->shape[0]}));
  // Logits stay close to the float model's (INT8 weights, tiny random model: well under 0.1).
  auto base = Model::load(golden("gpt2")), quant = Model::load(tmp / "o");
  const std::vector<int32_t> ids = {5, 17, 42, 99, 3};
  Session sb(*base, 8), sq(*quant, 8);
  const float* lb = sb.forward(ids, false);
  std::vector<float> b(lb, lb + base->config().n_vocab);
  const float* lq = sq.forward(ids, false);
  float md = 0;
  for (std::size_t v = 0; v < b.size(); ++v) md = std::max(md, std::fabs(b[v] - lq[v]));
  EXPECT_GT(md, 0.0f);
  EXPECT_LT(md, 0.1f);
  fs::remove_all(tmp);
}

TEST(QuantoCli, ShardsPastMaxShardSize) {
  const auto tmp = test::temp_dir("qcli-shard");
  auto r = test::run_qllm(
      fmt::format("quantize {} {} -w int4 --exclude lm_head --max-shard-size 100KB", q(golden("qwen2")), q(tmp / "o")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(tmp / "o" / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(tmp / "o" / "model.safetensors"));
  // The sharded set holds exactly quanto's tensors, bit for bit.
  const TensorSet a = TensorSet::open(tmp / "o"), b = TensorSet::open(golden("quanto/qwen2-qint4"));
  EXPECT_EQ(a.all().size(), b.all().size());
  for (const auto& t : b.all()) {
    const auto* d = a.find(t.name());
    ASSERT_NE(d, nullptr) << t.name();
    const auto x = a.get(t.name());
    ASSERT_EQ(x.bytes.size(), t.bytes.size());
    EXPECT_EQ(std::memcmp(x.bytes.data(), t.bytes.data(), t.bytes.size()), 0) << t.name();
  }
  auto m = Model::load(tmp / "o");
  EXPECT_EQ(m->config().n_vocab, 320);
  fs::remove_all(tmp);
}

TEST(QuantoCli, AbsmaxShowsTheWalkthrough) {
  auto r = test::run_qllm(fmt::format("absmax {} model.layers.0.mlp.up_proj.weight --rows 2 --per-channel",
                                      q(golden("llama-f32"))));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("scales (127 / max|row|)"), std::string::npos);
  EXPECT_NE(r.out.find("SQNR = "), std::string::npos);
  r = test::run_qllm(fmt::format("absmax {} nope.weight", q(golden("llama-f32"))));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("tensor 'nope.weight': missing"), std::string::npos);
}
