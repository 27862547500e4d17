// `qllm inspect` on the shared stories260K checkpoint: the README of the shared data gives 260,032
// parameters, and HF's checkpoint holds 47 F32 tensors (tied embeddings stored once).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "testing.h"

using nlohmann::json;

TEST(InspectCli, Stories260KJson) {
  const auto dir = qllm::test::data_dir() / "models" / "stories260K";
  if (!std::filesystem::exists(dir / "model.safetensors")) GTEST_SKIP() << "no " << dir;
  auto r = qllm::test::run_qllm("inspect --json '" + dir.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["tensor_count"], 47);
  EXPECT_EQ(j["parameters"], 260032);
  EXPECT_EQ(j["dtypes"].size(), 1u);
  EXPECT_EQ(j["dtypes"]["F32"]["tensors"], 47);
  EXPECT_EQ(j["dtypes"]["F32"]["parameters"], 260032);
  // F32: 4 bytes per parameter, all of them stored.
  EXPECT_EQ(j["memory_footprint_bytes"], 4 * 260032);
  EXPECT_EQ(j["file_bytes"], std::filesystem::file_size(dir / "model.safetensors"));
  // config.json: dim=64, 5 layers, 8 heads, 4 KV heads, vocab 512, context 512.
  EXPECT_EQ(j["config"]["architecture"], "LlamaForCausalLM");
  EXPECT_EQ(j["config"]["n_layer"], 5);
  EXPECT_EQ(j["config"]["n_embd"], 64);
  EXPECT_EQ(j["config"]["n_head_kv"], 4);
  EXPECT_EQ(j["config"]["n_vocab"], 512);
  EXPECT_EQ(j["config"]["n_ctx"], 512);
  EXPECT_EQ(j["tensors"][0]["name"], "model.embed_tokens.weight");
  EXPECT_EQ(j["tensors"][0]["shape"], json({512, 64}));
}

TEST(InspectCli, Stories260KTable) {
  const auto dir = qllm::test::data_dir() / "models" / "stories260K";
  if (!std::filesystem::exists(dir / "model.safetensors")) GTEST_SKIP() << "no " << dir;
  auto r = qllm::test::run_qllm("inspect '" + dir.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("parameters        260,032"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("model.layers.4.self_attn.v_proj.weight"), std::string::npos);
  EXPECT_NE(r.out.find("[32, 64]"), std::string::npos);
}
