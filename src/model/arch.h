// Architectures: which tensors a checkpoint holds and what the runtime does with them.
//
// Each architecture (gpt2.cpp, llama.cpp, qwen2.cpp) contributes one ArchSpec: a few flags that
// select the runtime's variant of each block (LayerNorm or RMSNorm, learned positions or RoPE,
// fused QKV, gated MLP) and a function that lists every weight-bearing module of a checkpoint
// with its Hugging Face module name, its role and its expected shape, computed from the config.
// Loading checks the list against the TensorSet and reports every missing or mis-shaped tensor at
// once. The quantizer walks the same list, so both agree on what a "Linear" is.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "format/hf_config.h"
#include "format/safetensors.h"

namespace qllm {

enum class ModuleKind { Linear, Embedding, PositionEmbedding, LmHead, Norm };

// What the runtime uses a module for.
enum class Role {
  TokEmbd, PosEmbd, AttnNorm, AttnQkv, AttnQ, AttnK, AttnV, AttnOut,
  MlpNorm, MlpGate, MlpUp, MlpDown, FinalNorm, LmHead
};

// One module of the checkpoint. Its tensors are `name + ".weight"` (and `name + ".bias"` when
// has_bias). Shapes, in the y = W x convention:
//   Linear, LmHead       W [n_out, n_in]; stored [n_in, n_out] when conv1d (GPT-2 Conv1D)
//   Embedding            [n_vocab, n_embd] as n_out = n_vocab, n_in = n_embd
//   PositionEmbedding    [n_ctx, n_embd]   as n_out = n_ctx,   n_in = n_embd
//   Norm                 [n_out] (n_in = 0); LayerNorm also has a bias [n_out]
struct ModuleInfo {
  std::string name;
  ModuleKind kind;
  int64_t n_out, n_in;
  bool conv1d;
  bool has_bias;
  Role role = Role::TokEmbd;
  int layer = -1;  // block index, -1 for modules outside the blocks
};

enum class NormKind { LayerNorm, RmsNorm };

struct ArchSpec {
  Arch arch;
  NormKind norm;
  bool learned_pos;  // absolute position embeddings (GPT-2) instead of RoPE
  bool fused_qkv;    // one projection producing [q | k | v]
  bool gated_mlp;    // down(act(gate(x)) * up(x)) instead of down(act(up(x)))
  // The checkpoint's modules, in model order. `ts` may be null: the names transformers'
  // save_pretrained writes are used then (e.g. to create a checkpoint).
  std::vector<ModuleInfo> (*modules)(const ModelConfig& cfg, const TensorSet* ts);
};

const ArchSpec& arch_spec(Arch a);

// Every weight-bearing module of the checkpoint, with its HF module name as it appears in the
// checkpoint (e.g. "transformer.h.0.attn.c_attn" or "h.0.attn.c_attn",
// "model.layers.0.mlp.up_proj", "lm_head", "model.embed_tokens"). LmHead is listed even when
// tied (cfg.tie_embeddings says so); its name is then "lm_head" though no tensor may exist.
std::vector<ModuleInfo> list_modules(const ModelConfig& cfg, const TensorSet& ts);
// The same, with the names save_pretrained writes (no checkpoint to look at).
std::vector<ModuleInfo> list_modules(const ModelConfig& cfg);

// load_model_config(dir), the config these take, comes from format/hf_config.h.

// ---- per-architecture specs (one file each) ----
extern const ArchSpec kGpt2Spec;
extern const ArchSpec kLlamaSpec;
extern const ArchSpec kQwen2Spec;

// Llama's module list; Qwen2 uses the same names (its biases follow from the config).
std::vector<ModuleInfo> llama_modules(const ModelConfig& cfg, const TensorSet* ts);

}  // namespace qllm
