// config.json keys, per model_type, with transformers' defaults for keys a file may omit:
//   gpt2   n_embd, n_layer, n_head, n_inner (null: 4*n_embd), vocab_size, n_positions,
//          layer_norm_epsilon (1e-5), activation_function (gelu_new); tie_word_embeddings true
//   llama  hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
//          num_key_value_heads (null: num_attention_heads), head_dim (null: hidden/heads),
//          vocab_size, max_position_embeddings, rms_norm_eps (1e-6), hidden_act (silu),
//          attention_bias, mlp_bias (false); tie_word_embeddings false
//   qwen2  as llama; q/k/v always carry a bias, o_proj never; use_sliding_window (false)
// RoPE: v4 writes rope_theta (+ rope_scaling {type or rope_type, factor, ...}), v5 writes
// rope_parameters {rope_type, rope_theta, factor, ...}. The default, linear and llama3 types are
// implemented (RopeScaling); dynamic, yarn, longrope and the others are rejected.
// JSON null means "absent" (transformers writes e.g. "head_dim": null).
#include "format/hf_config.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "util/error.h"

namespace qllm {
namespace {

using Json = nlohmann::json;

// Upper bounds keep every product of dimensions far from int64 overflow.
constexpr int64_t kMaxDim = int64_t{1} << 24;
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxHeadDim = 1024;

const Json* find_key(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<int64_t> get_int(const Json& j, const char* key, const std::filesystem::path& path) {
  const Json* v = find_key(j, key);
  if (!v) return std::nullopt;
  if (v->is_number_integer()) return v->get<int64_t>();
  // Integral floats ("hidden_size": 64.0) are accepted; anything else is an error.
  if (v->is_number_float()) {
    double d = v->get<double>();
    if (std::abs(d) < 9e15 && d == std::floor(d)) return static_cast<int64_t>(d);
  }
  fail(path, "key '{}': expected an integer (got {})", key, v->dump());
}

int64_t require_int(const Json& j, const char* key, const std::filesystem::path& path) {
  auto v = get_int(j, key, path);
  if (!v) fail(path, "key '{}': missing", key);
  return *v;
}

std::optional<double> get_number(const Json& j, const char* key, const std::filesystem::path& path) {
  const Json* v = find_key(j, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) fail(path, "key '{}': expected a number (got {})", key, v->dump());
  return v->get<double>();
}

std::optional<bool> get_bool(const Json& j, const char* key, const std::filesystem::path& path) {
  const Json* v = find_key(j, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) fail(path, "key '{}': expected true or false (got {})", key, v->dump());
  return v->get<bool>();
}

std::optional<std::string> get_string(const Json& j, const char* key,
                                      const std::filesystem::path& path) {
  const Json* v = find_key(j, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) fail(path, "key '{}': expected a string (got {})", key, v->dump());
  return v->get<std::string>();
}

// A token id, or a list of them (eos_token_id may be either).
std::vector<int32_t> get_ids(const Json& j, const char* key, const std::filesystem::path& path) {
  const Json* v = find_key(j, key);
  if (!v) return {};
  auto one = [&](const Json& e) {
    if (!e.is_number_integer() || e.get<int64_t>() < 0 ||
        e.get<int64_t>() > std::numeric_limits<int32_t>::max())
      fail(path, "key '{}': expected a token id or a list of them (got {})", key, v->dump());
    return static_cast<int32_t>(e.get<int64_t>());
  };
  std::vector<int32_t> out;
  if (v->is_array()) {
    for (const auto& e : *v) out.push_back(one(e));
  } else {
    out.push_back(one(*v));
  }
  return out;
}

Json parse_json(std::string_view text, const std::filesystem::path& path) {
  try {
    auto j = Json::parse(text);
    if (!j.is_object()) fail(path, "expected a JSON object");
    return j;
  } catch (const Json::exception& e) {
    // nlohmann's message has the byte position; keep it on one line.
    std::string msg = e.what();
    for (char& c : msg)
      if (c == '\n') c = ' ';
    fail(path, "malformed JSON: {}", msg);
  }
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Arch parse_arch(const Json& j, const std::filesystem::path& path) {
  auto type = get_string(j, "model_type", path);
  if (!type) {
    // Very old files name only the class.
    const Json* archs = find_key(j, "architectures");
    if (archs && archs->is_array() && !archs->empty() && (*archs)[0].is_string()) {
      auto a = (*archs)[0].get<std::string>();
      if (a == "GPT2LMHeadModel") return Arch::Gpt2;
      if (a == "LlamaForCausalLM") return Arch::Llama;
      if (a == "Qwen2ForCausalLM") return Arch::Qwen2;
      fail(path, "architecture '{}' is not supported (supported: gpt2, llama, qwen2)", a);
    }
    fail(path, "key 'model_type': missing");
  }
  if (*type == "gpt2") return Arch::Gpt2;
  if (*type == "llama") return Arch::Llama;
  if (*type == "qwen2") return Arch::Qwen2;
  fail(path, "model_type '{}' is not supported (supported: gpt2, llama, qwen2)", *type);
}

Activation parse_act(const std::string& name, const char* key, const std::filesystem::path& path) {
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") {
    // gelu_fast is the same tanh approximation written differently.
    return Activation::GeluTanh;
  }
  if (name == "gelu") return Activation::GeluErf;
  if (name == "silu" || name == "swish") return Activation::Silu;
  fail(path, "key '{}': activation '{}' is not supported (supported: gelu_new, "
             "gelu_pytorch_tanh, gelu, silu)", key, name);
}

// A required positive number of a rope_scaling / rope_parameters object.
float rope_number(const Json& scaling, const char* key, const char* where, const std::filesystem::path& path) {
  const Json* v = find_key(scaling, key);
  if (!v) fail(path, "key '{}': '{}' missing (needed by its rope_type)", where, key);
  if (!v->is_number() || !(v->get<double>() > 0.0) || !std::isfinite(v->get<double>()))
    fail(path, "key '{}': '{}' must be a positive number (got {})", where, key, v->dump());
  return static_cast<float>(v->get<double>());
}

// The rope_type of a rope_scaling (v4) or rope_parameters (v5) object and its parameters. Any
// type not implemented changes the numbers, so it is an error.
void parse_rope_scaling(RopeScaling& r, const Json* scaling, const char* key, const std::filesystem::path& path) {
  if (!scaling) return;
  if (!scaling->is_object()) fail(path, "key '{}': expected an object (got {})", key, scaling->dump());
  std::string type = "default";
  for (const char* k : {"rope_type", "type"}) {
    if (auto it = scaling->find(k); it != scaling->end() && it->is_string()) type = it->get<std::string>();
  }
  if (type == "default") return;
  if (type == "linear") {
    r.kind = RopeScaling::Kind::Linear;
    r.factor = rope_number(*scaling, "factor", key, path);
    return;
  }
  if (type == "llama3") {
    r.kind = RopeScaling::Kind::Llama3;
    r.factor = rope_number(*scaling, "factor", key, path);
    r.low_freq_factor = rope_number(*scaling, "low_freq_factor", key, path);
    r.high_freq_factor = rope_number(*scaling, "high_freq_factor", key, path);
    r.original_positions = rope_number(*scaling, "original_max_position_embeddings", key, path);
    if (!(r.high_freq_factor > r.low_freq_factor))
      fail(path, "key '{}': high_freq_factor ({}) must exceed low_freq_factor ({})", key, r.high_freq_factor,
           r.low_freq_factor);
    return;
  }
  fail(path, "key '{}': RoPE scaling type '{}' is not supported (supported: default, linear, llama3)", key, type);
}

void parse_rope(ModelConfig& c, const Json& j, const std::filesystem::path& path) {
  if (const Json* params = find_key(j, "rope_parameters")) {
    parse_rope_scaling(c.rope_scaling, params, "rope_parameters", path);
    if (auto t = get_number(*params, "rope_theta", path)) c.rope_theta = static_cast<float>(*t);
  }
  parse_rope_scaling(c.rope_scaling, find_key(j, "rope_scaling"), "rope_scaling", path);
  if (auto t = get_number(j, "rope_theta", path)) c.rope_theta = static_cast<float>(*t);
  if (!(c.rope_theta > 0.0f)) fail(path, "key 'rope_theta': must be positive (got {})", c.rope_theta);
}

void parse_gpt2(ModelConfig& c, const Json& j, const std::filesystem::path& path) {
  c.n_embd = require_int(j, "n_embd", path);
  c.n_layer = require_int(j, "n_layer", path);
  c.n_head = require_int(j, "n_head", path);
  c.n_head_kv = c.n_head;
  c.n_ff = get_int(j, "n_inner", path).value_or(4 * c.n_embd);
  c.n_vocab = require_int(j, "vocab_size", path);
  c.n_ctx = require_int(j, "n_positions", path);
  c.norm_eps = static_cast<float>(get_number(j, "layer_norm_epsilon", path).value_or(1e-5));
  c.act = parse_act(get_string(j, "activation_function", path).value_or("gelu_new"),
                    "activation_function", path);
  c.tie_embeddings = get_bool(j, "tie_word_embeddings", path).value_or(true);
  c.attn_qkv_bias = c.attn_out_bias = c.mlp_bias = true;
  if (c.n_head > 0) c.head_dim = c.n_embd / c.n_head;
  // Variants of the attention that change its numbers.
  if (!get_bool(j, "scale_attn_weights", path).value_or(true))
    fail(path, "key 'scale_attn_weights': false is not supported");
  if (get_bool(j, "scale_attn_by_inverse_layer_idx", path).value_or(false))
    fail(path, "key 'scale_attn_by_inverse_layer_idx': true is not supported");
}

void parse_llama_like(ModelConfig& c, const Json& j, const std::filesystem::path& path) {
  c.n_embd = require_int(j, "hidden_size", path);
  c.n_ff = require_int(j, "intermediate_size", path);
  c.n_layer = require_int(j, "num_hidden_layers", path);
  c.n_head = require_int(j, "num_attention_heads", path);
  c.n_head_kv = get_int(j, "num_key_value_heads", path).value_or(c.n_head);
  c.n_vocab = require_int(j, "vocab_size", path);
  c.n_ctx = require_int(j, "max_position_embeddings", path);
  c.norm_eps = static_cast<float>(get_number(j, "rms_norm_eps", path).value_or(1e-6));
  c.act = parse_act(get_string(j, "hidden_act", path).value_or("silu"), "hidden_act", path);
  c.tie_embeddings = get_bool(j, "tie_word_embeddings", path).value_or(false);
  auto head_dim = get_int(j, "head_dim", path);
  if (head_dim) {
    c.head_dim = *head_dim;
  } else if (c.n_head > 0) {
    c.head_dim = c.n_embd / c.n_head;
  }
  parse_rope(c, j, path);
  if (c.arch == Arch::Qwen2) {
    c.attn_qkv_bias = true;
    c.attn_out_bias = false;
    c.mlp_bias = false;
    if (get_bool(j, "use_sliding_window", path).value_or(false))
      fail(path, "key 'use_sliding_window': sliding-window attention is not supported");
  } else {
    c.attn_qkv_bias = c.attn_out_bias = get_bool(j, "attention_bias", path).value_or(false);
    c.mlp_bias = get_bool(j, "mlp_bias", path).value_or(false);
  }
  // v5 lists the attention kind per layer.
  if (const Json* types = find_key(j, "layer_types"); types && types->is_array()) {
    for (const auto& t : *types)
      if (!t.is_string() || t.get<std::string>() != "full_attention")
        fail(path, "key 'layer_types': layer type {} is not supported (only full_attention)", t.dump());
  }
}

void check_range(int64_t v, int64_t lo, int64_t hi, const char* what, const std::filesystem::path& path) {
  if (v < lo || v > hi) fail(path, "{} out of range (expected {}..{}, got {})", what, lo, hi, v);
}

void validate(const ModelConfig& c, const std::filesystem::path& path) {
  check_range(c.n_embd, 1, kMaxDim, "n_embd", path);
  check_range(c.n_layer, 1, kMaxLayers, "n_layer", path);
  check_range(c.n_head, 1, kMaxDim, "n_head", path);
  check_range(c.n_head_kv, 1, c.n_head, "n_head_kv", path);
  check_range(c.n_ff, 1, kMaxDim, "n_ff", path);
  check_range(c.n_vocab, 1, std::numeric_limits<int32_t>::max(), "n_vocab", path);
  check_range(c.n_ctx, 1, kMaxDim, "n_ctx", path);
  check_range(c.head_dim, 1, kMaxHeadDim, "head_dim", path);
  if (c.n_head % c.n_head_kv != 0)
    fail(path, "n_head ({}) is not a multiple of n_head_kv ({})", c.n_head, c.n_head_kv);
  if (c.arch == Arch::Gpt2 && c.n_embd % c.n_head != 0)
    fail(path, "n_embd ({}) is not a multiple of n_head ({})", c.n_embd, c.n_head);
  if (c.arch != Arch::Gpt2 && c.head_dim % 2 != 0)
    fail(path, "head_dim must be even for RoPE (got {})", c.head_dim);
  if (!(c.norm_eps >= 0.0f)) fail(path, "norm epsilon must be non-negative (got {})", c.norm_eps);
}

}  // namespace

std::string_view arch_name(Arch a) {
  switch (a) {
    case Arch::Gpt2: return "gpt2";
    case Arch::Llama: return "llama";
    case Arch::Qwen2: return "qwen2";
  }
  return "?";
}

ModelConfig parse_model_config(std::string_view json, const std::filesystem::path& path) {
  Json j = parse_json(json, path);
  ModelConfig c;
  c.arch = parse_arch(j, path);
  if (c.arch == Arch::Gpt2) {
    parse_gpt2(c, j, path);
  } else {
    parse_llama_like(c, j, path);
  }
  auto dtype_key = find_key(j, "dtype") ? "dtype" : "torch_dtype";
  if (auto d = get_string(j, dtype_key, path)) c.dtype = dtype_from_torch_name(*d);
  auto bos = get_ids(j, "bos_token_id", path);
  if (!bos.empty()) c.bos_id = bos[0];
  c.eos_ids = get_ids(j, "eos_token_id", path);
  validate(c, path);
  return c;
}

void apply_generation_config(ModelConfig& cfg, std::string_view json,
                             const std::filesystem::path& path) {
  Json j = parse_json(json, path);
  auto bos = get_ids(j, "bos_token_id", path);
  if (!bos.empty()) cfg.bos_id = bos[0];
  auto eos = get_ids(j, "eos_token_id", path);
  if (!eos.empty()) cfg.eos_ids = eos;
  if (auto m = get_int(j, "max_length", path)) {
    if (*m < 1) fail(path, "key 'max_length': must be positive (got {})", *m);
    cfg.max_length = *m;
  }
}

ModelConfig load_model_config(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(dir, ec)) return parse_model_config(read_text(dir), dir);
  const auto path = dir / "config.json";
  if (!std::filesystem::exists(path, ec)) fail(dir, "no config.json (not a Hugging Face model directory?)");
  ModelConfig cfg = parse_model_config(read_text(path), path);
  const auto gen = dir / "generation_config.json";
  if (std::filesystem::exists(gen, ec)) apply_generation_config(cfg, read_text(gen), gen);
  return cfg;
}

}  // namespace qllm
