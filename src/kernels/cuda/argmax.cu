// Greedy sampling on the GPU: the index of the largest logit (the first one on ties, as the CPU
// sampler picks), one block. Variants: none. Optionally advances the device-side position so a
// captured decode graph can run step after step.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.h"

namespace qllm::cuda {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ bool better(float v, int i, float bv, int bi) {
  return v > bv || (v == bv && i < bi);
}

__global__ void __launch_bounds__(kThreads)
    argmax_kernel(const float* x, int64_t n, int32_t* out, int32_t* advance) {
  __shared__ float sv[kThreads / 32];
  __shared__ int si[kThreads / 32];
  float bv = -INFINITY;
  int bi = 0x7FFFFFFF;
  for (int i = threadIdx.x; i < n; i += kThreads)
    if (better(x[i], i, bv, bi)) {
      bv = x[i];
      bi = i;
    }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float v = __shfl_xor_sync(0xFFFFFFFFu, bv, off);
    const int i = __shfl_xor_sync(0xFFFFFFFFu, bi, off);
    if (better(v, i, bv, bi)) {
      bv = v;
      bi = i;
    }
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) {
    sv[warp] = bv;
    si[warp] = bi;
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  for (int w = 1; w < kThreads / 32; ++w)
    if (better(sv[w], si[w], bv, bi)) {
      bv = sv[w];
      bi = si[w];
    }
  *out = bi == 0x7FFFFFFF ? 0 : bi;  // all NaN: token 0
  if (advance) *advance += 1;
}

}  // namespace

void argmax(const float* x, int64_t n, int32_t* out, int32_t* advance, cudaStream_t stream) {
  argmax_kernel<<<1, kThreads, 0, stream>>>(x, n, out, advance);
  QLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace qllm::cuda
