// CudaModel's device-side weights (CUDA builds only; used by cuda_model.cpp and cuda_session.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cuda/gpu_matrix.h"
#include "runtime/cuda/cuda_session.h"

namespace qllm::cuda {

struct DevNorm {
  const float* w = nullptr;  // [n_embd]
  const float* b = nullptr;  // [n_embd] or null (RMSNorm)
};

struct DevLayer {
  DevNorm attn_norm, mlp_norm;
  GpuMatrix wqkv;           // [q_dim + 2*kv_dim, n_embd], fused checkpoints only
  GpuMatrix wq, wk, wv;     // [q_dim | kv_dim | kv_dim, n_embd]
  GpuMatrix wo;             // [n_embd, q_dim]
  GpuMatrix w_gate, w_up;   // [n_ff, n_embd]; gate only for gated MLPs
  GpuMatrix w_down;         // [n_embd, n_ff]
};

struct CudaModel::Impl {
  const Model* model = nullptr;
  std::vector<void*> device_allocs;  // cudaFree'd at destruction
  void* host_alloc = nullptr;        // cudaFreeHost'd at destruction
  // Token embedding [n_vocab, n_embd], row stride ld_tok: device memory (shared with a tied
  // lm_head) or a device pointer to mapped host memory.
  const void* tok = nullptr;
  QType tok_type = QType::F32;
  int64_t ld_tok = 0;
  const void* pos = nullptr;  // [n_ctx, n_embd] learned positions, or null
  QType pos_type = QType::F32;
  int64_t ld_pos = 0;
  std::vector<DevLayer> layers;  // [n_layer]
  DevNorm final_norm;            // [n_embd]
  GpuMatrix lm_head;             // [n_vocab, n_embd]
  uint64_t weight_bytes = 0, host_bytes = 0, bf16_params = 0;

  ~Impl();
};

}  // namespace qllm::cuda
