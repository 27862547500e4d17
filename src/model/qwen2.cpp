// Qwen2 (Qwen2ForCausalLM): Llama's layout and blocks with a bias on q_proj, k_proj and
// v_proj (none on o_proj or the MLP), which hf_config sets from the model_type.
#include "model/arch.h"

namespace qllm {

const ArchSpec kQwen2Spec{Arch::Qwen2, NormKind::RmsNorm, /*learned_pos=*/false,
                          /*fused_qkv=*/false, /*gated_mlp=*/true, &llama_modules};

}  // namespace qllm
