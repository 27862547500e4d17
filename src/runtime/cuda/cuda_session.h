// The CUDA backend's model and session: the CPU Session's interface (runtime/session.h) with the
// weights, the KV cache and every activation on the GPU.
//
// CudaModel uploads a loaded Model's weights once, in their stored (quantized) form, repacked to
// the kernels' layout (kernels/cuda/gpu_matrix.h). The token embedding is needed only one row
// per token, so unless the lm_head shares it (tied float head) it stays in mapped host memory
// and costs no VRAM. CudaSession runs sequences on it: prompts in batches of up to kMaxBatch
// tokens (cuBLAS), decoding one token at a time (GEMV kernels), each decode step replayed as one
// CUDA graph (QLLM_CUDA_GRAPHS=0 turns graphs off). The KV cache and activations are f32.
//
// This header needs no CUDA: in a build without it, every entry point throws FormatError
// ("built without CUDA") and device_available() is false.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "runtime/generate.h"
#include "runtime/model.h"

namespace qllm::cuda {

// True when this build has the CUDA backend and a CUDA device can be used.
bool device_available();
// "NVIDIA H100 80GB HBM3, 132 SMs, 79.1 GiB", or why there is none.
std::string device_description();

// Where device memory goes, in bytes.
struct MemoryReport {
  uint64_t weights = 0;          // matrices, scales, shifts, biases, norms on the GPU
  uint64_t host_embedding = 0;   // token embedding kept in mapped host memory (not VRAM)
  uint64_t kv_cache = 0;
  uint64_t workspace = 0;        // activations, dequantization scratch, logits
  uint64_t bf16_equivalent = 0;  // every parameter as bf16 (tied matrices once)
  uint64_t device_used = 0;      // cudaMemGetInfo total - free (includes the CUDA context)
};

class CudaModel {
 public:
  // Uploads the weights of `model`, which must outlive this object. Throws FormatError when a
  // weight cannot run on the GPU (a QInt4/QInt2 group size that is neither a multiple of 32 nor
  // the whole row; quanto never writes one).
  explicit CudaModel(const Model& model);
  ~CudaModel();
  CudaModel(const CudaModel&) = delete;
  CudaModel& operator=(const CudaModel&) = delete;

  const Model& model() const;
  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

class CudaSession {
 public:
  static constexpr int64_t kMaxBatch = 512;

  // n_ctx: positions to reserve, <= the model's n_ctx; 0 means the model's n_ctx.
  // exact_prefill: run batched matmuls in f32 for every weight type (default: bf16 tensor-core
  // GEMMs for BF16 and quantized weights; see kernels/cuda/ops.h gemm()).
  explicit CudaSession(const CudaModel& model, int64_t n_ctx = 0, bool exact_prefill = false);
  ~CudaSession();
  CudaSession(const CudaSession&) = delete;
  CudaSession& operator=(const CudaSession&) = delete;

  void reset();
  int pos() const;
  int64_t n_ctx() const;
  const Model& model() const;

  // As Session::forward: runs `ids` at [pos(), pos() + n), returns host logits [n, n_vocab] if
  // all_logits, else [1, n_vocab] of the last token; valid until the next call.
  const float* forward(std::span<const int32_t> ids, bool all_logits);
  // Runs `ids` and returns the argmax of the last token's logits, computed on the GPU (the
  // logits never leave it).
  int32_t forward_greedy(std::span<const int32_t> ids);

  MemoryReport memory() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// generate() of runtime/generate.h on the GPU. Greedy decoding without a repetition penalty
// stays on the GPU (argmax kernel); other sampling copies each step's logits to the host and
// uses the CPU Sampler, so results match the CPU path's semantics.
GenerateResult generate(CudaSession& s, std::span<const int32_t> prompt, const GenerateOptions& opts,
                        const std::function<void(int32_t)>& on_token = {});

}  // namespace qllm::cuda
