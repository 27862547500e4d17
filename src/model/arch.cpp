#include "model/arch.h"

namespace qllm {

const ArchSpec& arch_spec(Arch a) {
  switch (a) {
    case Arch::Gpt2: return kGpt2Spec;
    case Arch::Llama: return kLlamaSpec;
    case Arch::Qwen2: return kQwen2Spec;
  }
  return kLlamaSpec;
}

std::vector<ModuleInfo> list_modules(const ModelConfig& cfg, const TensorSet& ts) {
  return arch_spec(cfg.arch).modules(cfg, &ts);
}

std::vector<ModuleInfo> list_modules(const ModelConfig& cfg) {
  return arch_spec(cfg.arch).modules(cfg, nullptr);
}

}  // namespace qllm
