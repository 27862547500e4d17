// Causal GQA attention over the f32 KV cache, for decode (n = 1) and prefill (n tokens) alike.
//
// One block per (query head, token); its 8 warps take keys j = warp, warp + 8, ... Each lane
// holds head_dim/32 (rounded up) query elements; a key's score is a warp-wide dot product, and
// each warp keeps an online softmax (running max, sum and weighted V). The warps' partial states
// are merged at the end. Variants: R = elements per lane (1, 2, 4, 8: head_dim up to 256).
// Keys are visited two at a time so two loads are in flight per lane.
#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.h"

namespace qllm::cuda {
namespace {

constexpr int kWarps = 8;

template <int R>
__global__ void __launch_bounds__(kWarps * 32)
    attention_kernel(const float* q, int64_t ld_q, const float* k_cache, const float* v_cache,
                     int kv_dim, const int32_t* pos, int group, int head_dim, float scale,
                     float* out, int64_t ld_out) {
  __shared__ float s_m[kWarps], s_l[kWarps];
  __shared__ float s_acc[kWarps][R * 32];
  const int h = blockIdx.x, t = blockIdx.y;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n_kv = *pos + t + 1;
  const int kv_off = (h / group) * head_dim;
  const float* qh = q + t * ld_q + h * head_dim;

  float qr[R], acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int d = lane + 32 * r;
    qr[r] = d < head_dim ? qh[d] * scale : 0.0f;
    acc[r] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;

  auto score = [&](int j) {
    const float* kj = k_cache + static_cast<int64_t>(j) * kv_dim + kv_off;
    float s = 0.0f;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int d = lane + 32 * r;
      if (d < head_dim) s = fmaf(qr[r], kj[d], s);
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xFFFFFFFFu, s, off);
    return s;
  };
  auto update = [&](int j, float s) {
    const float* vj = v_cache + static_cast<int64_t>(j) * kv_dim + kv_off;
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new), p = expf(s - m_new);
    l = l * corr + p;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int d = lane + 32 * r;
      acc[r] = acc[r] * corr + (d < head_dim ? p * vj[d] : 0.0f);
    }
    m = m_new;
  };

  int j = warp;
  for (; j + kWarps < n_kv; j += 2 * kWarps) {
    const float s0 = score(j), s1 = score(j + kWarps);
    update(j, s0);
    update(j + kWarps, s1);
  }
  if (j < n_kv) update(j, score(j));

  if (lane == 0) {
    s_m[warp] = m;
    s_l[warp] = l;
  }
#pragma unroll
  for (int r = 0; r < R; ++r) s_acc[warp][lane + 32 * r] = acc[r];
  __syncthreads();
  float mx = -INFINITY;
  for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, s_m[w]);
  float total = 0.0f;
  for (int w = 0; w < kWarps; ++w) total += s_m[w] == -INFINITY ? 0.0f : s_l[w] * expf(s_m[w] - mx);
  const float inv = 1.0f / total;
  float* o = out + t * ld_out + h * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += kWarps * 32) {
    float v = 0.0f;
    for (int w = 0; w < kWarps; ++w)
      if (s_m[w] != -INFINITY) v += s_acc[w][d] * expf(s_m[w] - mx);
    o[d] = v * inv;
  }
}

}  // namespace

void attention(const float* q, int64_t ld_q, const float* k_cache, const float* v_cache,
               int64_t kv_dim, const int32_t* pos, int64_t n, int64_t n_head, int64_t n_head_kv,
               int64_t head_dim, float* out, int64_t ld_out, cudaStream_t stream) {
  if (head_dim > 256) throw CudaError("attention: head_dim > 256 is not supported");
  const dim3 grid(static_cast<unsigned>(n_head), static_cast<unsigned>(n));
  const int group = static_cast<int>(n_head / n_head_kv);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const int kvd = static_cast<int>(kv_dim), hd = static_cast<int>(head_dim);
#define QLLM_ATTN(R)                                                                         \
  attention_kernel<R><<<grid, kWarps * 32, 0, stream>>>(q, ld_q, k_cache, v_cache, kvd, pos, \
                                                        group, hd, scale, out, ld_out)
  if (head_dim <= 32) {
    QLLM_ATTN(1);
  } else if (head_dim <= 64) {
    QLLM_ATTN(2);
  } else if (head_dim <= 128) {
    QLLM_ATTN(4);
  } else {
    QLLM_ATTN(8);
  }
#undef QLLM_ATTN
  QLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace qllm::cuda
