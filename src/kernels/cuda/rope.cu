// RoPE (transformers' rotate-half convention) fused with the KV-cache store, one block per
// token. Variants: with tables (Llama, Qwen2) or without (GPT-2: the store only).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.h"

namespace qllm::cuda {
namespace {

__global__ void rope_store_kernel(float* qkv, int64_t ld_qkv, int n_head, int n_head_kv,
                                  int head_dim, const float* cos, const float* sin,
                                  const int32_t* pos, float* k_cache, float* v_cache) {
  const int t = blockIdx.x;
  const int64_t p = *pos + t;
  const int half = head_dim / 2;
  const int q_dim = n_head * head_dim, kv_dim = n_head_kv * head_dim;
  float* q = qkv + t * ld_qkv;
  const float* k = q + q_dim;
  const float* v = k + kv_dim;
  float* kc = k_cache + p * kv_dim;
  float* vc = v_cache + p * kv_dim;
  if (cos) {
    const float* cs = cos + p * half;
    const float* sn = sin + p * half;
    // One thread per rotated pair (i, i + half) of a q or k head.
    for (int j = threadIdx.x; j < (n_head + n_head_kv) * half; j += blockDim.x) {
      const int h = j / half, i = j % half;
      const float c = cs[i], s = sn[i];
      if (h < n_head) {
        float* r = q + h * head_dim;
        const float a = r[i], b = r[i + half];
        r[i] = a * c - b * s;
        r[i + half] = b * c + a * s;
      } else {
        const int off = (h - n_head) * head_dim;
        const float a = k[off + i], b = k[off + i + half];
        kc[off + i] = a * c - b * s;
        kc[off + i + half] = b * c + a * s;
      }
    }
  } else {
    for (int j = threadIdx.x; j < kv_dim; j += blockDim.x) kc[j] = k[j];
  }
  for (int j = threadIdx.x; j < kv_dim; j += blockDim.x) vc[j] = v[j];
}

}  // namespace

void rope_store_kv(float* qkv, int64_t ld_qkv, int64_t n, int64_t n_head, int64_t n_head_kv,
                   int64_t head_dim, const float* cos, const float* sin, const int32_t* pos,
                   float* k_cache, float* v_cache, cudaStream_t stream) {
  rope_store_kernel<<<static_cast<unsigned>(n), 256, 0, stream>>>(
      qkv, ld_qkv, static_cast<int>(n_head), static_cast<int>(n_head_kv), static_cast<int>(head_dim),
      cos, sin, pos, k_cache, v_cache);
  QLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace qllm::cuda
