// GPT-2 (GPT2LMHeadModel) checkpoint layout. Two spellings exist:
//   save_pretrained output:  transformer.wte.weight, transformer.h.N...., transformer.ln_f
//   OpenAI's original upload: the same names without "transformer.", plus non-weight buffers
//                             h.N.attn.bias (the causal mask), which are ignored.
// Tensors (Conv1D weights are stored [n_in, n_out], i.e. transposed):
//   wte.weight             [n_vocab, n_embd]     wpe.weight  [n_ctx, n_embd]
//   h.N.ln_1.{weight,bias} [n_embd]              LayerNorm
//   h.N.attn.c_attn        [n_embd, 3*n_embd]    fused [q | k | v], with bias
//   h.N.attn.c_proj        [n_embd, n_embd]
//   h.N.ln_2.{weight,bias} [n_embd]
//   h.N.mlp.c_fc           [n_embd, n_ff]        h.N.mlp.c_proj [n_ff, n_embd]
//   ln_f.{weight,bias}     [n_embd]
//   lm_head.weight         [n_vocab, n_embd]     tied to wte (not stored) unless untied
#include <fmt/format.h>

#include "model/arch.h"

namespace qllm {
namespace {

std::vector<ModuleInfo> gpt2_modules(const ModelConfig& c, const TensorSet* ts) {
  // The original upload has no "transformer." prefix; detect it by its embedding.
  const bool bare = ts && !ts->contains("transformer.wte.weight") && ts->contains("wte.weight");
  const std::string t = bare ? "" : "transformer.";
  std::vector<ModuleInfo> m;
  m.push_back({t + "wte", ModuleKind::Embedding, c.n_vocab, c.n_embd, false, false, Role::TokEmbd, -1});
  m.push_back({t + "wpe", ModuleKind::PositionEmbedding, c.n_ctx, c.n_embd, false, false,
               Role::PosEmbd, -1});
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = fmt::format("{}h.{}.", t, l);
    auto conv = [&](const char* name, Role r, int64_t n_out, int64_t n_in) {
      m.push_back({p + name, ModuleKind::Linear, n_out, n_in, true, true, r, l});
    };
    m.push_back({p + "ln_1", ModuleKind::Norm, c.n_embd, 0, false, true, Role::AttnNorm, l});
    conv("attn.c_attn", Role::AttnQkv, 3 * c.n_embd, c.n_embd);
    conv("attn.c_proj", Role::AttnOut, c.n_embd, c.n_embd);
    m.push_back({p + "ln_2", ModuleKind::Norm, c.n_embd, 0, false, true, Role::MlpNorm, l});
    conv("mlp.c_fc", Role::MlpUp, c.n_ff, c.n_embd);
    conv("mlp.c_proj", Role::MlpDown, c.n_embd, c.n_ff);
  }
  m.push_back({t + "ln_f", ModuleKind::Norm, c.n_embd, 0, false, true, Role::FinalNorm, -1});
  // lm_head is an nn.Linear (not Conv1D) outside "transformer.".
  m.push_back({"lm_head", ModuleKind::LmHead, c.n_vocab, c.n_embd, false, false, Role::LmHead, -1});
  return m;
}

}  // namespace

const ArchSpec kGpt2Spec{Arch::Gpt2, NormKind::LayerNorm, /*learned_pos=*/true,
                         /*fused_qkv=*/true, /*gated_mlp=*/false, &gpt2_modules};

}  // namespace qllm
