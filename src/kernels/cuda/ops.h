// Host entry points of the CUDA kernels (one .cu file per op). All launches are asynchronous on
// `stream`; none allocates, so a sequence of them can be captured into a CUDA graph.
//
// Conventions: activation matrices are f32, row-major, with a row stride `ld` (in floats) that is
// a multiple of kGpuRowAlign and whose padding columns stay 0 (gpu_matrix.h). Positions are read
// from device memory (`pos`, one int32), so a captured graph stays valid as the sequence grows.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/gpu_matrix.h"

namespace qllm::cuda {

// ---- matmul (gemv.cu, gemm.cu) ----
// Token counts up to this run the GEMV kernels (weights read once for all tokens); more run
// dequantize-to-bf16 + cuBLAS.
inline constexpr int64_t kGemvMaxTokens = 8;

// One output of a GEMV launch: y[t * ld_y + o] for o < w.n_out.
struct GemvPart {
  GpuMatrix w;
  float* y = nullptr;
  int64_t ld_y = 0;
};

// y = W x + bias (accumulate: y += W x + bias) for each part, all in one launch. The parts share
// qtype and n_in (e.g. q, k and v projections). n_tok <= kGemvMaxTokens; x is [n_tok, ld_x].
void gemv(const GemvPart* parts, int n_parts, const float* x, int64_t ld_x, int64_t n_tok,
          bool accumulate, cudaStream_t stream);

// Scratch of the cuBLAS path, owned by the caller.
struct GemmWorkspace {
  cublasHandle_t handle = nullptr;
  void* w_buf = nullptr;       // dequantized weight rows (bf16 or f32)
  int64_t w_bytes = 0;
  uint16_t* x_bf16 = nullptr;  // activations as bf16, x_elems
  int64_t x_elems = 0;
  bool exact = false;          // every type through f32 SGEMM (dequantized to f32)
};

// y = W x + bias (accumulate: y += ...) for any n_tok. F32 weights: f32 SGEMM as stored. F16
// weights (and every type when ws.exact): dequantized to f32 in row blocks, f32 SGEMM. BF16: bf16
// GEMM as stored. Others: dequantized to bf16 in row blocks. The bf16 paths round x to bf16 and
// accumulate in f32 (cublasGemmEx).
void gemm(const GpuMatrix& w, const float* x, int64_t ld_x, int64_t n_tok, float* y, int64_t ld_y,
          bool accumulate, GemmWorkspace& ws, cudaStream_t stream);

// gemv() for n_tok <= kGemvMaxTokens, else gemm().
void linear(const GpuMatrix& w, const float* x, int64_t ld_x, int64_t n_tok, float* y,
            int64_t ld_y, bool accumulate, GemmWorkspace& ws, cudaStream_t stream);

// Dequantizes rows [r0, r0 + n_rows) of W into out [n_rows, w.ld], bf16 or f32 (gemm.cu).
void dequantize_rows(const GpuMatrix& w, int64_t r0, int64_t n_rows, void* out, bool to_f32,
                     cudaStream_t stream);

// ---- norms (norm.cu) ----
// out[t] = norm(x[t]) for t < n over `dim` columns. layer_norm: (x - mean) / sqrt(var + eps) * w
// + b (b may be null); else RMSNorm: x / sqrt(mean(x^2) + eps) * w.
void norm_rows(bool layer_norm, const float* x, int64_t ld_x, int64_t n, int64_t dim,
               const float* w, const float* b, float eps, float* out, int64_t ld_out,
               cudaStream_t stream);

// ---- embeddings (embed.cu) ----
// x[t] = tok[ids[t]] (+ pos_embd[*pos + t]) for t < n. Tables are [rows, n_embd] with row
// stride ld_tab elements, F32, F16 or BF16; they may live in mapped host memory.
void embed(const void* tok, QType tok_type, int64_t ld_tok, const void* pos_tab, QType pos_type,
           int64_t ld_pos, const int32_t* ids, const int32_t* pos, int64_t n, int64_t n_embd,
           float* x, int64_t ld_x, cudaStream_t stream);

// ---- RoPE and the KV cache (rope.cu) ----
// For each token t < n of qkv [n, ld_qkv] = [q | k | v] (q_dim, kv_dim, kv_dim columns):
// rotates q (in place) and k in the rotate-half convention with the table rows of position
// *pos + t (cos/sin [n_ctx, head_dim/2]; null: no rotation), then stores k and v as row *pos + t
// of k_cache / v_cache ([n_ctx, kv_dim] of one layer).
void rope_store_kv(float* qkv, int64_t ld_qkv, int64_t n, int64_t n_head, int64_t n_head_kv,
                   int64_t head_dim, const float* cos, const float* sin, const int32_t* pos,
                   float* k_cache, float* v_cache, cudaStream_t stream);

// ---- attention (attention.cu) ----
// Causal GQA attention of n query tokens at positions *pos + t against cache rows
// [0, *pos + t]: out[t, h] = softmax(q[t, h] . K^T / sqrt(head_dim)) V, KV head h / (n_head /
// n_head_kv). head_dim <= 256.
void attention(const float* q, int64_t ld_q, const float* k_cache, const float* v_cache,
               int64_t kv_dim, const int32_t* pos, int64_t n, int64_t n_head, int64_t n_head_kv,
               int64_t head_dim, float* out, int64_t ld_out, cudaStream_t stream);

// ---- activations (activation.cu) ----
enum class GpuAct { GeluTanh, GeluErf, Silu };
// x = act(x) on [n, cols].
void activate(GpuAct act, float* x, int64_t ld, int64_t n, int64_t cols, cudaStream_t stream);
// gate = act(gate) * up on [n, cols].
void activate_mul(GpuAct act, float* gate, const float* up, int64_t ld, int64_t n, int64_t cols,
                  cudaStream_t stream);
// y[t, o] += bias[o] on [n, cols].
void add_bias(float* y, int64_t ld, int64_t n, int64_t cols, const float* bias, cudaStream_t stream);

// ---- sampling (argmax.cu) ----
// *out = the first index of the largest of x[0 .. n); then, when advance is non-null,
// *advance += 1 (the next decode step's position).
void argmax(const float* x, int64_t n, int32_t* out, int32_t* advance, cudaStream_t stream);

}  // namespace qllm::cuda
