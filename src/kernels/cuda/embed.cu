// Token (and learned position) embedding lookup, one block per token. Variants: none.
// The tables may be in mapped host memory: only the rows of the current tokens cross the bus.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.h"

namespace qllm::cuda {
namespace {

__device__ float load_elem(const void* base, QType t, int64_t index) {
  switch (t) {
    case QType::F16: return __half2float(static_cast<const __half*>(base)[index]);
    case QType::BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[index]);
    default: return static_cast<const float*>(base)[index];
  }
}

__global__ void embed_kernel(const void* tok, QType tok_type, int64_t ld_tok, const void* pos_tab,
                             QType pos_type, int64_t ld_pos, const int32_t* ids, const int32_t* pos,
                             int64_t n_embd, float* x, int64_t ld_x) {
  const int t = blockIdx.x;
  const int64_t id = ids[t];
  const int64_t p = pos_tab ? *pos + t : 0;
  float* xr = x + t * ld_x;
  for (int64_t i = threadIdx.x; i < n_embd; i += blockDim.x) {
    float v = load_elem(tok, tok_type, id * ld_tok + i);
    if (pos_tab) v += load_elem(pos_tab, pos_type, p * ld_pos + i);
    xr[i] = v;
  }
}

}  // namespace

void embed(const void* tok, QType tok_type, int64_t ld_tok, const void* pos_tab, QType pos_type,
           int64_t ld_pos, const int32_t* ids, const int32_t* pos, int64_t n, int64_t n_embd,
           float* x, int64_t ld_x, cudaStream_t stream) {
  embed_kernel<<<static_cast<unsigned>(n), 256, 0, stream>>>(tok, tok_type, ld_tok, pos_tab, pos_type,
                                                             ld_pos, ids, pos, n_embd, x, ld_x);
  QLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace qllm::cuda
