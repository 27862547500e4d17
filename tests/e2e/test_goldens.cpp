// f32 forward and greedy decoding against Hugging Face transformers on tiny random models.
//
// Each tests/data/goldens/<name>/ holds a checkpoint (config.json, generation_config.json,
// model.safetensors) and golden.safetensors made by transformers in float32 on CPU (versions in
// goldens/versions.json): `ids` I64 [T], `logits` F32 [T, n_vocab] of model(ids), and `greedy`
// I64 [24], the continuation from generate(do_sample=False) with EOS disabled.
// F16/BF16 checkpoints are widened to f32 exactly on both sides, so storage needs no wider bound.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "format/hf_dir.h"
#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "runtime/generate.h"
#include "runtime/model.h"
#include "runtime/session.h"
#include "testing.h"
#include "util/error.h"

namespace qllm {
namespace {

// Both sides compute in float32 with different summation orders; on these 2-layer models with
// logits of magnitude ~2-10 that leaves differences of at most 7e-6 (observed). 1e-4 is the
// end-to-end f32 bound: loose enough for summation order, far below the smallest top-1 margin
// the generator checked (0.0069), so it still catches any real formula difference.
constexpr float kMaxLogitDiff = 1e-4f;

std::vector<int64_t> read_i64(const SafetensorsFile& f, const char* name) {
  const TensorDesc* d = f.find(name);
  if (!d || d->dtype != DType::I64) return {};
  TensorRef r = f.ref(*d);
  std::vector<int64_t> out(r.numel());
  std::memcpy(out.data(), r.bytes.data(), r.bytes.size());
  return out;
}

class Golden : public ::testing::TestWithParam<const char*> {};

TEST_P(Golden, LogitsAndGreedyMatchTransformers) {
  const auto dir = test::test_data_dir() / "goldens" / GetParam();
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no goldens at " << dir;
  SafetensorsFile golden(dir / "golden.safetensors");
  const auto ids64 = read_i64(golden, "ids");
  const auto greedy64 = read_i64(golden, "greedy");
  ASSERT_FALSE(ids64.empty());
  ASSERT_EQ(greedy64.size(), 24u);
  const std::vector<int32_t> ids(ids64.begin(), ids64.end());
  const std::vector<int32_t> greedy(greedy64.begin(), greedy64.end());
  const TensorDesc* ld = golden.find("logits");
  ASSERT_NE(ld, nullptr);
  const std::vector<float> expected = golden.ref(*ld).to_f32();

  auto model = Model::load(dir);
  const int64_t n_vocab = model->config().n_vocab;
  ASSERT_EQ(expected.size(), ids.size() * n_vocab);

  Session s(*model, static_cast<int64_t>(ids.size() + greedy.size()));
  const float* logits = s.forward(ids, true);
  float max_diff = 0;
  std::size_t worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const float d = std::abs(logits[i] - expected[i]);
    if (!(d <= max_diff)) {
      max_diff = d;
      worst = i;
    }
  }
  RecordProperty("max_logit_diff", std::to_string(max_diff));
  EXPECT_LE(max_diff, kMaxLogitDiff) << "worst at position " << worst / n_vocab << ", token "
                                     << worst % n_vocab << ": " << logits[worst] << " vs "
                                     << expected[worst];

  GenerateOptions g;
  g.max_new_tokens = static_cast<int64_t>(greedy.size());  // EOS disabled, as for the golden
  GenerateResult r = generate(s, ids, g);
  EXPECT_EQ(r.ids, greedy);
}

INSTANTIATE_TEST_SUITE_P(Hf, Golden,
                         ::testing::Values("gpt2", "gpt2-official", "llama", "llama-f32", "llama-rope-llama3",
                                           "llama-rope-linear", "qwen2"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

// A checkpoint with a mis-shaped embedding and no blocks: one error listing every problem.
TEST(ModelLoad, ReportsAllProblemsAtOnce) {
  const auto src = test::test_data_dir() / "goldens" / "gpt2";
  if (!std::filesystem::exists(src)) GTEST_SKIP() << "no goldens at " << src;
  const auto dir = test::temp_dir("model_load");
  std::filesystem::copy_file(src / "config.json", dir / "config.json");
  std::vector<TensorToWrite> t;
  t.push_back({"transformer.wte.weight", DType::F32, {300, 31},
               [](std::span<std::byte> b) { std::fill(b.begin(), b.end(), std::byte{0}); }});
  write_safetensors(dir / "model.safetensors", std::move(t));
  std::string msg;
  try {
    Model::load(dir);
  } catch (const FormatError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("tensor 'transformer.wte.weight': wrong shape (expected [300, 32], got [300, 31])"),
            std::string::npos) << msg;
  EXPECT_NE(msg.find("tensor 'transformer.wpe.weight': missing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tensor 'transformer.h.1.mlp.c_proj.weight': missing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tensor 'transformer.ln_f.bias': missing"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace qllm
