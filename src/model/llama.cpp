// Llama (LlamaForCausalLM) checkpoint layout, as transformers writes it:
//   model.embed_tokens.weight                  [n_vocab, n_embd]
//   model.layers.N.input_layernorm.weight      [n_embd]            RMSNorm
//   model.layers.N.self_attn.{q,k,v}_proj      [n_head*head_dim | n_head_kv*head_dim, n_embd]
//   model.layers.N.self_attn.o_proj            [n_embd, n_head*head_dim]
//   model.layers.N.post_attention_layernorm    [n_embd]
//   model.layers.N.mlp.{gate,up}_proj          [n_ff, n_embd]
//   model.layers.N.mlp.down_proj               [n_embd, n_ff]
//   model.norm.weight                          [n_embd]
//   lm_head.weight                             [n_vocab, n_embd]   absent when tied
// Biases exist where the config says (attention_bias, mlp_bias; Qwen2: q/k/v only).
#include <fmt/format.h>

#include "model/arch.h"

namespace qllm {

std::vector<ModuleInfo> llama_modules(const ModelConfig& c, const TensorSet* /*ts*/) {
  std::vector<ModuleInfo> m;
  m.push_back({"model.embed_tokens", ModuleKind::Embedding, c.n_vocab, c.n_embd, false, false,
               Role::TokEmbd, -1});
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    auto lin = [&](const char* name, Role r, int64_t n_out, int64_t n_in, bool bias) {
      m.push_back({p + name, ModuleKind::Linear, n_out, n_in, false, bias, r, l});
    };
    m.push_back({p + "input_layernorm", ModuleKind::Norm, c.n_embd, 0, false, false, Role::AttnNorm, l});
    lin("self_attn.q_proj", Role::AttnQ, c.q_dim(), c.n_embd, c.attn_qkv_bias);
    lin("self_attn.k_proj", Role::AttnK, c.kv_dim(), c.n_embd, c.attn_qkv_bias);
    lin("self_attn.v_proj", Role::AttnV, c.kv_dim(), c.n_embd, c.attn_qkv_bias);
    lin("self_attn.o_proj", Role::AttnOut, c.n_embd, c.q_dim(), c.attn_out_bias);
    m.push_back({p + "post_attention_layernorm", ModuleKind::Norm, c.n_embd, 0, false, false,
                 Role::MlpNorm, l});
    lin("mlp.gate_proj", Role::MlpGate, c.n_ff, c.n_embd, c.mlp_bias);
    lin("mlp.up_proj", Role::MlpUp, c.n_ff, c.n_embd, c.mlp_bias);
    lin("mlp.down_proj", Role::MlpDown, c.n_embd, c.n_ff, c.mlp_bias);
  }
  m.push_back({"model.norm", ModuleKind::Norm, c.n_embd, 0, false, false, Role::FinalNorm, -1});
  m.push_back({"lm_head", ModuleKind::LmHead, c.n_vocab, c.n_embd, false, false, Role::LmHead, -1});
  return m;
}

const ArchSpec kLlamaSpec{Arch::Llama, NormKind::RmsNorm, /*learned_pos=*/false,
                          /*fused_qkv=*/false, /*gated_mlp=*/true, &llama_modules};

}  // namespace qllm
