// Decode matmul: y = W x for 1..8 tokens, bandwidth-bound, one warp per output row.
//
// Variants: one kernel per (QType, NT in {1, 2, 4, 8}); n_tok is rounded up to NT and the extra
// token rows are clamped reads that are never stored. Each lane streams 16-byte chunks of the row
// (U chunks in flight before the first use), decodes them (dequant.cuh) and multiplies them with
// the f32 activations of every token, so weights are read from memory once per call. Several
// matrices with the same input (q/k/v, gate/up) share one launch (GemvPart).
// Benchmark: bench/cuda/bench_gpu.sh (qllm bench --device cuda) reports tok/s and the fraction
// of HBM bandwidth the decode step reaches.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dequant.cuh"
#include "kernels/cuda/ops.h"

namespace qllm::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kMaxParts = 3;

struct Parts {
  GemvPart p[kMaxParts];
  int64_t row_end[kMaxParts];  // cumulative output rows
  int n = 0;
};

template <QType Q>
constexpr int kUnroll = (Q == QType::QInt4 || Q == QType::QInt2) ? 2 : 4;

template <QType Q, int NT>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    gemv_kernel(const Parts parts, const float* __restrict__ x, int64_t ld_x, int n_tok,
                bool accumulate) {
  constexpr int E = kChunkWeights<Q>;
  constexpr int U = kUnroll<Q>;
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= parts.row_end[parts.n - 1]) return;
  const int pi = row < parts.row_end[0] ? 0 : row < parts.row_end[1] ? 1 : 2;
  const GemvPart P = pi == 0 ? parts.p[0] : pi == 1 ? parts.p[1] : parts.p[2];
  const int64_t o = row - (pi == 0 ? 0 : parts.row_end[pi - 1]);
  const GpuMatrix& w = P.w;
  const int64_t rb = w.row_bytes();
  const auto* wrow = static_cast<const uint8_t*>(w.data) + o * rb;
  const int n_chunks = static_cast<int>(rb / 16);

  const float* xr[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) xr[t] = x + (t < n_tok ? t : n_tok - 1) * ld_x;

  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = 0.0f;

  for (int c0 = lane; c0 < n_chunks; c0 += 32 * U) {
    uint4 v[U];
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (c0 + 32 * u < n_chunks) v[u] = ld_stream(wrow + static_cast<int64_t>(c0 + 32 * u) * 16);
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = c0 + 32 * u;
      if (c >= n_chunks) break;
      float f[E];
      decode_chunk<Q>(v[u], w, o, static_cast<int64_t>(c) * E, f);
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        const float4* xp = reinterpret_cast<const float4*>(xr[t] + static_cast<int64_t>(c) * E);
        float s = 0.0f;
#pragma unroll
        for (int k = 0; k < E / 4; ++k) {
          const float4 xv = __ldg(xp + k);
          s = fmaf(f[4 * k], xv.x, s);
          s = fmaf(f[4 * k + 1], xv.y, s);
          s = fmaf(f[4 * k + 2], xv.z, s);
          s = fmaf(f[4 * k + 3], xv.w, s);
        }
        acc[t] += s;
      }
    }
  }
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) acc[t] += __shfl_xor_sync(0xFFFFFFFFu, acc[t], off);
  if (lane != 0) return;
  float scale = 1.0f;
  if constexpr (Q == QType::QInt8 || Q == QType::QFloat8) scale = w.scale[o];
  const float b = w.bias ? w.bias[o] : 0.0f;
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    if (t >= n_tok) break;
    float* yp = P.y + t * P.ld_y + o;
    const float r = acc[t] * scale + b;
    *yp = accumulate ? *yp + r : r;
  }
}

template <QType Q>
void launch_q(const Parts& parts, const float* x, int64_t ld_x, int64_t n_tok, bool acc,
              cudaStream_t stream) {
  const int64_t rows = parts.row_end[parts.n - 1];
  const dim3 grid(static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock));
  const dim3 block(kWarpsPerBlock * 32);
  const int nt = static_cast<int>(n_tok);
  if (n_tok == 1) {
    gemv_kernel<Q, 1><<<grid, block, 0, stream>>>(parts, x, ld_x, nt, acc);
  } else if (n_tok == 2) {
    gemv_kernel<Q, 2><<<grid, block, 0, stream>>>(parts, x, ld_x, nt, acc);
  } else if (n_tok <= 4) {
    gemv_kernel<Q, 4><<<grid, block, 0, stream>>>(parts, x, ld_x, nt, acc);
  } else {
    gemv_kernel<Q, 8><<<grid, block, 0, stream>>>(parts, x, ld_x, nt, acc);
  }
  QLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void gemv(const GemvPart* parts, int n_parts, const float* x, int64_t ld_x, int64_t n_tok,
          bool accumulate, cudaStream_t stream) {
  if (n_parts < 1 || n_parts > kMaxParts || n_tok < 1 || n_tok > kGemvMaxTokens)
    throw CudaError("gemv: bad part or token count");
  Parts p;
  p.n = n_parts;
  int64_t rows = 0;
  for (int i = 0; i < kMaxParts; ++i) {
    if (i < n_parts) {
      if (parts[i].w.qtype != parts[0].w.qtype || parts[i].w.ld != parts[0].w.ld)
        throw CudaError("gemv: parts differ in qtype or n_in");
      p.p[i] = parts[i];
      rows += parts[i].w.n_out;
    }
    p.row_end[i] = rows;
  }
  switch (parts[0].w.qtype) {
    case QType::F32: launch_q<QType::F32>(p, x, ld_x, n_tok, accumulate, stream); break;
    case QType::F16: launch_q<QType::F16>(p, x, ld_x, n_tok, accumulate, stream); break;
    case QType::BF16: launch_q<QType::BF16>(p, x, ld_x, n_tok, accumulate, stream); break;
    case QType::QInt8: launch_q<QType::QInt8>(p, x, ld_x, n_tok, accumulate, stream); break;
    case QType::QFloat8: launch_q<QType::QFloat8>(p, x, ld_x, n_tok, accumulate, stream); break;
    case QType::QInt4: launch_q<QType::QInt4>(p, x, ld_x, n_tok, accumulate, stream); break;
    case QType::QInt2: launch_q<QType::QInt2>(p, x, ld_x, n_tok, accumulate, stream); break;
  }
}

}  // namespace qllm::cuda
