// Elementwise MLP activations (GELU tanh/erf, SiLU), the gated product and bias addition.
// Variants: none. Same formulas as runtime/ops.cpp, without fast-math approximations.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.h"

namespace qllm::cuda {
namespace {

__device__ __forceinline__ float act_one(GpuAct a, float x) {
  switch (a) {
    case GpuAct::GeluTanh: {
      constexpr float kSqrt2OverPi = 0.7978845608028654f;
      return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
    }
    case GpuAct::GeluErf: return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
    case GpuAct::Silu: return x / (1.0f + expf(-x));
  }
  return x;
}

__global__ void act_kernel(GpuAct a, float* x, const float* up, int64_t ld, int64_t n, int64_t cols) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= n * cols) return;
  const int64_t e = idx / cols * ld + idx % cols;
  const float r = act_one(a, x[e]);
  x[e] = up ? r * up[e] : r;
}

__global__ void bias_kernel(float* y, int64_t ld, int64_t n, int64_t cols, const float* bias) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= n * cols) return;
  y[idx / cols * ld + idx % cols] += bias[idx % cols];
}

unsigned blocks(int64_t n) { return static_cast<unsigned>((n + 255) / 256); }

}  // namespace

void activate(GpuAct act, float* x, int64_t ld, int64_t n, int64_t cols, cudaStream_t stream) {
  act_kernel<<<blocks(n * cols), 256, 0, stream>>>(act, x, nullptr, ld, n, cols);
  QLLM_CUDA_CHECK_LAUNCH();
}

void activate_mul(GpuAct act, float* gate, const float* up, int64_t ld, int64_t n, int64_t cols,
                  cudaStream_t stream) {
  act_kernel<<<blocks(n * cols), 256, 0, stream>>>(act, gate, up, ld, n, cols);
  QLLM_CUDA_CHECK_LAUNCH();
}

void add_bias(float* y, int64_t ld, int64_t n, int64_t cols, const float* bias, cudaStream_t stream) {
  bias_kernel<<<blocks(n * cols), 256, 0, stream>>>(y, ld, n, cols, bias);
  QLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace qllm::cuda
