// config.json / generation_config.json parsing: real files (stories260K, the published GPT-2 and
// Qwen2 configs), transformers v4 and v5 spellings, and rejection of what the runtime lacks.
#include <gtest/gtest.h>

#include "format/hf_config.h"
#include "model/arch.h"
#include "testing.h"
#include "util/error.h"

namespace qllm {
namespace {

std::string error_of(std::string_view json) {
  try {
    parse_model_config(json, "config.json");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

TEST(HfConfig, Stories260K) {
  ModelConfig c = load_model_config(test::data_dir() / "models" / "stories260K");
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_EQ(c.n_embd, 64);
  EXPECT_EQ(c.n_ff, 172);
  EXPECT_EQ(c.n_layer, 5);
  EXPECT_EQ(c.n_head, 8);
  EXPECT_EQ(c.n_head_kv, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.n_vocab, 512);
  EXPECT_EQ(c.n_ctx, 512);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_EQ(c.act, Activation::Silu);
  EXPECT_EQ(c.bos_id, 1);
  EXPECT_EQ(c.eos_ids, std::vector<int32_t>{2});
  EXPECT_EQ(c.max_length, 512);  // generation_config.json
  EXPECT_EQ(c.dtype, DType::F32);
}

TEST(HfConfig, Gpt2PublishedConfig) {
  ModelConfig c = load_model_config(test::data_dir() / "configs" / "gpt2.json");
  EXPECT_EQ(c.arch, Arch::Gpt2);
  EXPECT_EQ(c.n_embd, 768);
  EXPECT_EQ(c.n_layer, 12);
  EXPECT_EQ(c.n_head, 12);
  EXPECT_EQ(c.n_head_kv, 12);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.n_ff, 3072);  // n_inner absent: 4 * n_embd
  EXPECT_EQ(c.n_vocab, 50257);
  EXPECT_EQ(c.n_ctx, 1024);
  EXPECT_EQ(c.act, Activation::GeluTanh);
  EXPECT_TRUE(c.tie_embeddings);  // transformers' default
  EXPECT_TRUE(c.attn_qkv_bias && c.attn_out_bias && c.mlp_bias);
  EXPECT_EQ(c.eos_ids, std::vector<int32_t>{50256});
}

TEST(HfConfig, Qwen2PublishedConfig) {
  ModelConfig c = load_model_config(test::data_dir() / "configs" / "qwen2-0.5b-instruct.json");
  EXPECT_EQ(c.arch, Arch::Qwen2);
  EXPECT_EQ(c.n_embd, 896);
  EXPECT_EQ(c.n_head, 14);
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.n_ff, 4864);
  EXPECT_EQ(c.n_ctx, 32768);
  EXPECT_FLOAT_EQ(c.rope_theta, 1000000.0f);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  EXPECT_TRUE(c.attn_qkv_bias);
  EXPECT_FALSE(c.attn_out_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_EQ(c.dtype, DType::BF16);  // v4 torch_dtype
}

constexpr const char* kLlamaV5 = R"({
  "model_type": "llama", "hidden_size": 64, "intermediate_size": 320, "num_hidden_layers": 2,
  "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 320,
  "max_position_embeddings": 128, "rms_norm_eps": 1e-05, "dtype": "float16",
  "rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"},
  "eos_token_id": [2, 3], "bos_token_id": 1})";

TEST(HfConfig, V5KeysAndDefaults) {
  ModelConfig c = parse_model_config(kLlamaV5, "config.json");
  EXPECT_FLOAT_EQ(c.rope_theta, 500000.0f);
  EXPECT_EQ(c.dtype, DType::F16);
  EXPECT_EQ(c.head_dim, 32);  // explicit, not hidden_size / heads
  EXPECT_EQ(c.eos_ids, (std::vector<int32_t>{2, 3}));
  EXPECT_FALSE(c.tie_embeddings);  // LlamaConfig's default
  EXPECT_FALSE(c.attn_qkv_bias);
  EXPECT_EQ(c.act, Activation::Silu);
}

// Scaled RoPE in both spellings: v5 rope_parameters and v4 rope_scaling with "type".
TEST(HfConfig, RopeScaling) {
  std::string v5 = kLlamaV5;
  v5.replace(v5.find("\"default\""), 9, R"("llama3", "factor": 32.0, "low_freq_factor": 1.0,
      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192)");
  ModelConfig c = parse_model_config(v5, "config.json");
  EXPECT_EQ(c.rope_scaling.kind, RopeScaling::Kind::Llama3);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 32.0f);
  EXPECT_FLOAT_EQ(c.rope_scaling.low_freq_factor, 1.0f);
  EXPECT_FLOAT_EQ(c.rope_scaling.high_freq_factor, 4.0f);
  EXPECT_FLOAT_EQ(c.rope_scaling.original_positions, 8192.0f);
  EXPECT_FLOAT_EQ(c.rope_theta, 500000.0f);
  std::string v4 = kLlamaV5;
  const auto at = v4.find("\"rope_parameters\"");
  v4.replace(at, v4.find('}', at) + 1 - at,
             R"("rope_theta": 10000.0, "rope_scaling": {"type": "linear", "factor": 2.0})");
  c = parse_model_config(v4, "config.json");
  EXPECT_EQ(c.rope_scaling.kind, RopeScaling::Kind::Linear);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 2.0f);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_EQ(parse_model_config(kLlamaV5, "config.json").rope_scaling.kind, RopeScaling::Kind::None);
}

TEST(HfConfig, GenerationConfigOverrides) {
  ModelConfig c = parse_model_config(kLlamaV5, "config.json");
  apply_generation_config(c, R"({"eos_token_id": 7, "bos_token_id": 5, "max_length": 64})",
                          "generation_config.json");
  EXPECT_EQ(c.eos_ids, std::vector<int32_t>{7});
  EXPECT_EQ(c.bos_id, 5);
  EXPECT_EQ(c.max_length, 64);
}

TEST(HfConfig, RejectsUnsupported) {
  EXPECT_NE(error_of(R"({"model_type": "mistral"})").find("model_type 'mistral' is not supported"),
            std::string::npos);
  std::string yarn = kLlamaV5;
  yarn.replace(yarn.find("\"default\""), 9, "\"yarn\"");
  EXPECT_NE(error_of(yarn).find("RoPE scaling type 'yarn'"), std::string::npos) << error_of(yarn);
  std::string dynamic = std::string(kLlamaV5);
  dynamic.insert(dynamic.size() - 1, R"(, "rope_scaling": {"type": "dynamic", "factor": 2.0})");
  EXPECT_NE(error_of(dynamic).find("RoPE scaling type 'dynamic'"), std::string::npos) << error_of(dynamic);
  // llama3 needs all four of its parameters, and sensible ones.
  std::string partial = std::string(kLlamaV5);
  partial.insert(partial.size() - 1, R"(, "rope_scaling": {"rope_type": "llama3", "factor": 8.0})");
  EXPECT_NE(error_of(partial).find("'low_freq_factor' missing"), std::string::npos) << error_of(partial);
  std::string zero = kLlamaV5;
  zero.replace(zero.find("\"default\""), 9, R"("linear", "factor": 0)");
  EXPECT_NE(error_of(zero).find("'factor' must be a positive number"), std::string::npos) << error_of(zero);
  std::string act = kLlamaV5;
  act.insert(act.size() - 1, R"(, "hidden_act": "relu2")");
  EXPECT_NE(error_of(act).find("activation 'relu2'"), std::string::npos);
}

TEST(HfConfig, RejectsMalformed) {
  std::string e = error_of(R"({"model_type": "llama", )");
  EXPECT_EQ(e.rfind("config.json: malformed JSON", 0), 0u) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos);
  e = error_of(R"([1, 2])");
  EXPECT_NE(e.find("expected a JSON object"), std::string::npos);
  std::string bad = kLlamaV5;
  bad.replace(bad.find("\"hidden_size\": 64"), 17, "\"hidden_size\": \"64\"");
  EXPECT_NE(error_of(bad).find("key 'hidden_size': expected an integer"), std::string::npos);
  std::string missing = kLlamaV5;
  missing.replace(missing.find("\"vocab_size\": 320,"), 18, "");
  EXPECT_NE(error_of(missing).find("key 'vocab_size': missing"), std::string::npos);
  std::string heads = kLlamaV5;
  heads.replace(heads.find("\"num_key_value_heads\": 2"), 24, "\"num_key_value_heads\": 3");
  EXPECT_NE(error_of(heads).find("not a multiple of n_head_kv"), std::string::npos);
  EXPECT_THROW(load_model_config(test::temp_dir("hf_config_empty")), FormatError);
}

TEST(ArchModules, Gpt2Names) {
  ModelConfig c = load_model_config(test::data_dir() / "configs" / "gpt2.json");
  auto mods = list_modules(c);
  ASSERT_EQ(mods.size(), 2u + 12u * 6u + 2u);
  EXPECT_EQ(mods[0].name, "transformer.wte");
  EXPECT_EQ(mods[2].name, "transformer.h.0.ln_1");
  EXPECT_EQ(mods[3].name, "transformer.h.0.attn.c_attn");
  EXPECT_EQ(mods[3].n_out, 3 * 768);
  EXPECT_TRUE(mods[3].conv1d);
  EXPECT_EQ(mods.back().kind, ModuleKind::LmHead);
  EXPECT_EQ(mods.back().name, "lm_head");
}

TEST(ArchModules, LlamaNames) {
  ModelConfig c = parse_model_config(kLlamaV5, "config.json");
  auto mods = list_modules(c);
  ASSERT_EQ(mods.size(), 1u + 2u * 9u + 2u);
  EXPECT_EQ(mods[2].name, "model.layers.0.self_attn.q_proj");
  EXPECT_EQ(mods[2].n_out, 8 * 32);
  EXPECT_EQ(mods[3].n_out, 2 * 32);  // k_proj: GQA
  EXPECT_EQ(mods[9].name, "model.layers.0.mlp.down_proj");
  EXPECT_EQ(mods[9].n_in, 320);
}

}  // namespace
}  // namespace qllm
