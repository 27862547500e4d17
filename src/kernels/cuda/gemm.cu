// Prefill matmul: y = W x for many tokens through cuBLAS.
//
// Variants: F32 weights go to cublasSgemm as stored (full f32, so f32 models keep CPU parity).
// F16 weights (11-bit mantissas that bf16 would cut), and every type in exact mode, are
// dequantized to f32 and go to cublasSgemm. BF16 weights go to cublasGemmEx directly; the
// quantized types are first dequantized to bf16. Dequantization runs one block of rows at a time
// into the caller's workspace (dequantize_rows). On the bf16 paths activations are rounded to
// bf16 once per call; products accumulate in f32. The padded row length `ld` is the GEMM's K:
// padding is 0 in both operands.
#include <cuda_bf16.h>

#include <algorithm>

#include "kernels/cuda/cublas_loader.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dequant.cuh"
#include "kernels/cuda/ops.h"

namespace qllm::cuda {
namespace {

template <QType Q, bool F32>
__global__ void dequant_kernel(const GpuMatrix w, int64_t r0, int64_t n_rows, void* out) {
  constexpr int E = kChunkWeights<Q>;
  const int64_t chunks_per_row = w.row_bytes() / 16;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= n_rows * chunks_per_row) return;
  const int64_t r = idx / chunks_per_row, c = idx % chunks_per_row;
  const int64_t o = r0 + r;
  const uint4 v = ld_stream(static_cast<const uint8_t*>(w.data) + o * w.row_bytes() + c * 16);
  float f[E];
  decode_chunk<Q>(v, w, o, c * E, f);
  float scale = 1.0f;
  if constexpr (Q == QType::QInt8 || Q == QType::QFloat8) scale = w.scale[o];
  if constexpr (F32) {
    auto* dst = reinterpret_cast<float4*>(static_cast<float*>(out) + r * w.ld + c * E);
#pragma unroll
    for (int k = 0; k < E / 4; ++k)
      dst[k] = make_float4(f[4 * k] * scale, f[4 * k + 1] * scale, f[4 * k + 2] * scale, f[4 * k + 3] * scale);
  } else {
    auto* dst = reinterpret_cast<__nv_bfloat162*>(static_cast<uint16_t*>(out) + r * w.ld + c * E);
#pragma unroll
    for (int k = 0; k < E / 2; ++k) dst[k] = __floats2bfloat162_rn(f[2 * k] * scale, f[2 * k + 1] * scale);
  }
}

__global__ void to_bf16_kernel(const float* x, int64_t ld_x, int64_t n, int64_t cols, uint16_t* out) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= n * cols) return;
  const int64_t t = idx / cols, i = idx % cols;
  const __nv_bfloat16 b = __float2bfloat16_rn(x[t * ld_x + i]);
  out[idx] = *reinterpret_cast<const uint16_t*>(&b);
}

unsigned blocks(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

template <bool F32>
void dequant_launch(const GpuMatrix& w, int64_t r0, int64_t n_rows, void* out, cudaStream_t stream) {
  const int64_t n = n_rows * (w.row_bytes() / 16);
  const unsigned g = blocks(n, 256);
  switch (w.qtype) {
    case QType::F32: dequant_kernel<QType::F32, F32><<<g, 256, 0, stream>>>(w, r0, n_rows, out); break;
    case QType::F16: dequant_kernel<QType::F16, F32><<<g, 256, 0, stream>>>(w, r0, n_rows, out); break;
    case QType::BF16: dequant_kernel<QType::BF16, F32><<<g, 256, 0, stream>>>(w, r0, n_rows, out); break;
    case QType::QInt8: dequant_kernel<QType::QInt8, F32><<<g, 256, 0, stream>>>(w, r0, n_rows, out); break;
    case QType::QFloat8: dequant_kernel<QType::QFloat8, F32><<<g, 256, 0, stream>>>(w, r0, n_rows, out); break;
    case QType::QInt4: dequant_kernel<QType::QInt4, F32><<<g, 256, 0, stream>>>(w, r0, n_rows, out); break;
    case QType::QInt2: dequant_kernel<QType::QInt2, F32><<<g, 256, 0, stream>>>(w, r0, n_rows, out); break;
  }
  QLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void dequantize_rows(const GpuMatrix& w, int64_t r0, int64_t n_rows, void* out, bool to_f32,
                     cudaStream_t stream) {
  if (to_f32) {
    dequant_launch<true>(w, r0, n_rows, out, stream);
  } else {
    dequant_launch<false>(w, r0, n_rows, out, stream);
  }
}

void gemm(const GpuMatrix& w, const float* x, int64_t ld_x, int64_t n_tok, float* y, int64_t ld_y,
          bool accumulate, GemmWorkspace& ws, cudaStream_t stream) {
  QLLM_CUBLAS_CHECK(cublas().set_stream(ws.handle, stream));
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  const int n = static_cast<int>(n_tok), k = static_cast<int>(w.ld);
  const bool f32_path = w.qtype == QType::F32 || w.qtype == QType::F16 || ws.exact;
  const bool direct = w.qtype == QType::F32 || (w.qtype == QType::BF16 && !ws.exact);
  const int64_t elem = f32_path ? 4 : 2;
  const int64_t block_rows = direct ? w.n_out : std::min(w.n_out, ws.w_bytes / (elem * w.ld));
  if (block_rows < 1) throw CudaError("gemm: weight workspace too small");
  if (!f32_path) {
    if (n_tok * w.ld > ws.x_elems) throw CudaError("gemm: activation workspace too small");
    to_bf16_kernel<<<blocks(n_tok * w.ld, 256), 256, 0, stream>>>(x, ld_x, n_tok, w.ld, ws.x_bf16);
    QLLM_CUDA_CHECK_LAUNCH();
  }
  for (int64_t r0 = 0; r0 < w.n_out; r0 += block_rows) {
    const int64_t rows = std::min(block_rows, w.n_out - r0);
    const void* a = static_cast<const uint8_t*>(w.data) + r0 * w.row_bytes();
    if (!direct) {
      dequantize_rows(w, r0, rows, ws.w_buf, f32_path, stream);
      a = ws.w_buf;
    }
    if (f32_path) {
      QLLM_CUBLAS_CHECK(cublas().sgemm(ws.handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), n, k,
                                    &alpha, static_cast<const float*>(a), k, x,
                                    static_cast<int>(ld_x), &beta, y + r0, static_cast<int>(ld_y)));
    } else {
      QLLM_CUBLAS_CHECK(cublas().gemm_ex(ws.handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), n, k,
                                     &alpha, a, CUDA_R_16BF, k, ws.x_bf16, CUDA_R_16BF, k, &beta,
                                     y + r0, CUDA_R_32F, static_cast<int>(ld_y), CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT));
    }
  }
  if (w.bias) add_bias(y, ld_y, n_tok, w.n_out, w.bias, stream);
}

void linear(const GpuMatrix& w, const float* x, int64_t ld_x, int64_t n_tok, float* y,
            int64_t ld_y, bool accumulate, GemmWorkspace& ws, cudaStream_t stream) {
  if (n_tok <= kGemvMaxTokens) {
    GemvPart p{w, y, ld_y};
    gemv(&p, 1, x, ld_x, n_tok, accumulate, stream);
  } else {
    gemm(w, x, ld_x, n_tok, y, ld_y, accumulate, ws, stream);
  }
}

}  // namespace qllm::cuda
