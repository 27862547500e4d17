// RMSNorm and LayerNorm, one block per token row. Variants: none. Sums are accumulated in double,
// as the CPU ops do (runtime/ops.cpp), so both paths agree to float rounding.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.h"

namespace qllm::cuda {
namespace {

constexpr int kThreads = 256;

__device__ double block_sum(double v, double* shared) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, off);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();  // `shared` may still be read from a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  double total = 0.0;
  for (int i = 0; i < kThreads / 32; ++i) total += shared[i];
  return total;
}

__global__ void __launch_bounds__(kThreads)
    norm_kernel(bool layer_norm, const float* x, int64_t ld_x, int64_t dim, const float* w,
                const float* b, float eps, float* out, int64_t ld_out) {
  __shared__ double shared[kThreads / 32];
  const float* xr = x + blockIdx.x * ld_x;
  float* yr = out + blockIdx.x * ld_out;
  if (layer_norm) {
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < dim; i += kThreads) s += xr[i];
    const double mean = block_sum(s, shared) / static_cast<double>(dim);
    double v = 0.0;
    for (int64_t i = threadIdx.x; i < dim; i += kThreads) {
      const double d = xr[i] - mean;
      v += d * d;
    }
    const double var = block_sum(v, shared) / static_cast<double>(dim);
    const auto inv = static_cast<float>(1.0 / sqrt(var + eps));
    const auto m = static_cast<float>(mean);
    for (int64_t i = threadIdx.x; i < dim; i += kThreads) {
      const float y = (xr[i] - m) * inv * w[i];
      yr[i] = b ? y + b[i] : y;
    }
  } else {
    double ss = 0.0;
    for (int64_t i = threadIdx.x; i < dim; i += kThreads) ss += static_cast<double>(xr[i]) * xr[i];
    const auto inv =
        static_cast<float>(1.0 / sqrt(block_sum(ss, shared) / static_cast<double>(dim) + eps));
    for (int64_t i = threadIdx.x; i < dim; i += kThreads) yr[i] = w[i] * (xr[i] * inv);
  }
}

}  // namespace

void norm_rows(bool layer_norm, const float* x, int64_t ld_x, int64_t n, int64_t dim,
               const float* w, const float* b, float eps, float* out, int64_t ld_out,
               cudaStream_t stream) {
  norm_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(layer_norm, x, ld_x, dim, w, b,
                                                                 eps, out, ld_out);
  QLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace qllm::cuda
