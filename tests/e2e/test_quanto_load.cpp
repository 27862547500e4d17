// qllm runs real optimum-quanto checkpoints (tests/data/goldens/quanto/<model>-<qtype>, written
// by optimum-quanto 0.2.7's save_pretrained; see tools/golden/README.md).
//
// References, both made by the golden generator with torch on CPU:
//   logits_f32 / greedy_f32: an f32 model whose quantized Linears hold W = f32(q)*f32(scale)
//     - f32(shift) computed from the saved file. qllm dequantizes the same way and computes in
//     f32, so only the summation order differs: bound kMaxLogitDiffF32, greedy tokens identical.
//   logits: quanto's own run in the model dtype (BF16/F16 compute). Its distance to logits_f32
//     is recorded in golden.json (max_abs_diff_logits_vs_logits_f32, up to 0.15 for BF16); ours
//     must be within that distance plus kMaxLogitDiffF32.
// The prompts are short, so the default kernels (the best ISA of this CPU) take fine activations
// (kernels/cpu/dispatch.h, kActQuantMinTokens): f32 with the scalar kernels, where the f32
// bound holds, or int16 per block with the AVX2 and AVX-512 ones, which adds at most 2^-16 of
// each block's absmax per element; end to end that stays within kMaxLogitDiffInt16Acts (largest
// seen on these 12 models: 8.2e-4 with AVX-512, 8.8e-4 with AVX2) and the greedy tokens stay
// identical. The int8-activation path of long prefills is bounded against the reference in
// tests/kernels.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "format/safetensors.h"
#include "kernels/cpu/dispatch.h"
#include "runtime/generate.h"
#include "runtime/model.h"
#include "runtime/session.h"
#include "testing.h"

namespace qllm {
namespace {

// f32 on both sides with different summation orders; the same end-to-end f32 bound as the float
// goldens (test_goldens.cpp): a tenth of the smallest top-1 margin the generator accepted.
constexpr float kMaxLogitDiffF32 = 1e-4f;
constexpr float kMaxLogitDiffInt16Acts = 2e-3f;

std::vector<int64_t> read_i64(const SafetensorsFile& f, const char* name) {
  const TensorDesc* d = f.find(name);
  if (!d || d->dtype != DType::I64) return {};
  TensorRef r = f.ref(*d);
  std::vector<int64_t> out(r.numel());
  std::memcpy(out.data(), r.bytes.data(), r.bytes.size());
  return out;
}

float max_diff(const float* a, const std::vector<float>& b) {
  float m = 0;
  for (std::size_t i = 0; i < b.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

class QuantoLoad : public ::testing::TestWithParam<const char*> {};

TEST_P(QuantoLoad, LogitsAndGreedyMatchQuanto) {
  const auto dir = test::test_data_dir() / "goldens" / "quanto" / GetParam();
  ASSERT_TRUE(std::filesystem::exists(dir / "model.safetensors")) << dir;
  std::ifstream jf(dir / "golden.json");
  std::stringstream js;
  js << jf.rdbuf();
  const auto info = nlohmann::json::parse(js.str());
  SafetensorsFile golden(dir / "golden.safetensors");
  const auto ids64 = read_i64(golden, "ids");
  const auto greedy64 = read_i64(golden, "greedy_f32");
  ASSERT_FALSE(ids64.empty());
  const std::vector<int32_t> ids(ids64.begin(), ids64.end());
  const std::vector<int32_t> greedy(greedy64.begin(), greedy64.end());
  const auto logits_f32 = golden.ref(*golden.find("logits_f32")).to_f32();
  const auto logits_own = golden.ref(*golden.find("logits")).to_f32();

  auto model = Model::load(dir);
  ASSERT_EQ(logits_f32.size(), ids.size() * model->config().n_vocab);
  Session s(*model, static_cast<int64_t>(ids.size() + greedy.size()));
  const float* logits = s.forward(ids, true);
  const float d32 = max_diff(logits, logits_f32), down = max_diff(logits, logits_own);
  const float quanto_dtype_gap = info.at("max_abs_diff_logits_vs_logits_f32").get<float>();
  std::printf("[ quanto   ] %s: max|logits - logits_f32| = %.3g, max|logits - quanto's own| = %.3g "
              "(quanto's own vs f32: %.3g)\n", GetParam(), d32, down, quanto_dtype_gap);
  const float bound = active_kernels().quantize_acts16 ? kMaxLogitDiffInt16Acts : kMaxLogitDiffF32;
  EXPECT_LE(d32, bound);
  EXPECT_LE(down, quanto_dtype_gap + bound);

  GenerateOptions g;
  g.max_new_tokens = static_cast<int64_t>(greedy.size());
  EXPECT_EQ(generate(s, ids, g).ids, greedy);
}

INSTANTIATE_TEST_SUITE_P(Goldens, QuantoLoad,
                         ::testing::Values("qwen2-qint8", "qwen2-qint4", "qwen2-qint2", "qwen2-qfloat8",
                                           "llama-qint8", "llama-qint4", "llama-qint2", "llama-qfloat8",
                                           "llama-f32-qint8", "llama-f32-qint4", "llama-f32-qint2",
                                           "llama-f32-qfloat8"),
                         [](const auto& i) {
                           std::string n = i.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace qllm
