// config.json and generation_config.json of a Hugging Face model directory.
//
// This is the only place that knows Hugging Face's key names (hidden_size, GPT-2's n_embd, ...).
// Everything else reads ModelConfig, whose fields use qllm's dimension names. Both the
// transformers v4 spellings (torch_dtype, rope_theta) and the v5 ones (dtype,
// rope_parameters.rope_theta) are accepted. Anything the runtime does not implement (another
// architecture, a RoPE scaling other than linear and llama3, sliding-window attention) is
// rejected here with a FormatError that names it, rather than silently producing different
// numbers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "format/dtype.h"

namespace qllm {

enum class Arch { Gpt2, Llama, Qwen2 };
std::string_view arch_name(Arch a);  // "gpt2", "llama", "qwen2" (HF model_type spelling)

// Activation of the MLP. GeluTanh covers gelu_new and gelu_pytorch_tanh (the same formula).
enum class Activation { GeluTanh, GeluErf, Silu };

// RoPE frequency scaling, transformers' rope_type: Linear divides every inverse frequency by
// `factor`; Llama3 (Llama 3.1 and later) divides those whose wavelength exceeds
// original_positions / low_freq_factor, keeps those below original_positions / high_freq_factor
// and blends linearly (in original_positions / wavelength) in between.
struct RopeScaling {
  enum class Kind : uint8_t { None, Linear, Llama3 };
  Kind kind = Kind::None;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  float original_positions = 8192.0f;  // original_max_position_embeddings
};

struct ModelConfig {
  Arch arch = Arch::Llama;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  int64_t n_ff = 0;
  int64_t n_vocab = 0;
  int64_t n_ctx = 0;  // positions the model was built for
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;  // unused by GPT-2 (learned positions)
  RopeScaling rope_scaling;
  Activation act = Activation::Silu;
  bool tie_embeddings = false;  // lm_head shares the token embedding matrix
  bool attn_qkv_bias = false;
  bool attn_out_bias = false;
  bool mlp_bias = false;
  std::optional<DType> dtype;  // declared storage dtype (informational; tensors carry their own)

  // Special tokens: config.json, overridden by generation_config.json where present.
  std::optional<int32_t> bos_id;
  std::vector<int32_t> eos_ids;  // generation stops at any of these
  std::optional<int64_t> max_length;  // generation_config.json max_length

  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }
};

// Parses config.json text. `path` is only used in error messages.
ModelConfig parse_model_config(std::string_view json, const std::filesystem::path& path);

// Applies generation_config.json text (eos_token_id int or list, bos_token_id, max_length).
void apply_generation_config(ModelConfig& cfg, std::string_view json,
                             const std::filesystem::path& path);

// Reads <dir>/config.json and, if present, <dir>/generation_config.json. `dir` may also name a
// config.json file directly (then no generation config is read).
ModelConfig load_model_config(const std::filesystem::path& dir);

}  // namespace qllm
