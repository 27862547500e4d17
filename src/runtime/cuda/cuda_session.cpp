// CudaSession: the forward pass of runtime/session.cpp, step for step, as CUDA kernel launches.
#ifdef QLLM_HAVE_CUDA

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/cuda/cublas_loader.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.h"
#include "runtime/cuda/cuda_model_impl.h"
#include "runtime/ops.h"
#include "util/error.h"

namespace qllm::cuda {
namespace {

// Rows of logits computed per lm_head pass when all positions' logits are requested.
constexpr int64_t kHeadRows = 64;
// Dequantized-weight scratch of the cuBLAS path: 32 MiB (larger matrices go in row blocks).
constexpr int64_t kDequantBytes = int64_t{32} << 20;

GpuAct gpu_act(Activation a) {
  switch (a) {
    case Activation::GeluTanh: return GpuAct::GeluTanh;
    case Activation::GeluErf: return GpuAct::GeluErf;
    case Activation::Silu: return GpuAct::Silu;
  }
  return GpuAct::Silu;
}

bool graphs_enabled() {
  const char* e = std::getenv("QLLM_CUDA_GRAPHS");
  return !(e && std::strcmp(e, "0") == 0);
}

}  // namespace

bool device_available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

std::string device_description() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) return std::string("no CUDA device: ") + cudaGetErrorString(e);
  if (n == 0) return "no CUDA device";
  cudaDeviceProp p{};
  QLLM_CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
  return fmt::format("{}, {} SMs, {:.1f} GiB", p.name, p.multiProcessorCount,
                     static_cast<double>(p.totalGlobalMem) / (1 << 30));
}

struct CudaSession::Impl {
  const CudaModel::Impl* w = nullptr;
  const ModelConfig* cfg = nullptr;
  const ArchSpec* spec = nullptr;
  int64_t n_ctx = 0, n_batch = 0, pos = 0;
  int64_t ld_e = 0, ld_qkv = 0, ld_q = 0, ld_ff = 0, ld_ffbuf = 0, ld_v = 0;

  cudaStream_t stream = nullptr;
  GemmWorkspace ws;
  std::vector<void*> allocs;
  uint64_t workspace_bytes = 0, kv_bytes = 0;

  float *x = nullptr, *h = nullptr, *qkv = nullptr, *att = nullptr, *ff = nullptr, *logits = nullptr;
  float *k_cache = nullptr, *v_cache = nullptr;  // [n_layer][n_ctx, kv_dim]
  float *rope_cos = nullptr, *rope_sin = nullptr;
  int32_t* d_meta = nullptr;  // [1 + n_batch]: position, then token ids
  int32_t* d_next = nullptr;  // greedy token
  int32_t* h_meta = nullptr;  // pinned mirror of d_meta
  int32_t* h_next = nullptr;  // pinned

  cudaGraphExec_t graph = nullptr;  // one decode step (n = 1), head and argmax included
  bool use_graphs = true;

  std::vector<float> logits_host;      // [n_vocab]
  std::vector<float> all_logits_host;  // [n, n_vocab]

  template <typename T>
  T* alloc(int64_t count, uint64_t* counter) {
    void* p = nullptr;
    const auto n = static_cast<std::size_t>(count) * sizeof(T);
    QLLM_CUDA_CHECK(cudaMalloc(&p, n));
    allocs.push_back(p);
    QLLM_CUDA_CHECK(cudaMemset(p, 0, n));  // padding columns must read as 0
    *counter += n;
    return static_cast<T*>(p);
  }

  ~Impl() {
    if (graph) cudaGraphExecDestroy(graph);
    for (void* p : allocs) cudaFree(p);
    if (h_meta) cudaFreeHost(h_meta);
    if (h_next) cudaFreeHost(h_next);
    if (ws.handle) cuda::cublas().destroy(ws.handle);
    if (stream) cudaStreamDestroy(stream);
  }

  void run_blocks(int64_t n);
  void head(int64_t first, int64_t n);
  void upload_meta(const int32_t* ids, int64_t n);
  void step(const int32_t* ids, int64_t n, bool greedy_head);
};

void CudaSession::Impl::run_blocks(int64_t n) {
  const ModelConfig& c = *cfg;
  const ArchSpec& s = *spec;
  const int64_t E = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim();
  const int32_t* d_pos = d_meta;
  embed(w->tok, w->tok_type, w->ld_tok, w->pos, w->pos_type, w->ld_pos, d_meta + 1, d_pos, n, E, x,
        ld_e, stream);
  const bool layer_norm = s.norm == NormKind::LayerNorm;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const DevLayer& L = w->layers[static_cast<std::size_t>(l)];
    float* kc = k_cache + l * n_ctx * kvd;
    float* vc = v_cache + l * n_ctx * kvd;

    // ---- attention ----
    norm_rows(layer_norm, x, ld_e, n, E, L.attn_norm.w, L.attn_norm.b, c.norm_eps, h, ld_e, stream);
    if (s.fused_qkv) {
      linear(L.wqkv, h, ld_e, n, qkv, ld_qkv, false, ws, stream);
    } else if (n <= kGemvMaxTokens && L.wq.qtype == L.wk.qtype && L.wq.qtype == L.wv.qtype) {
      const GemvPart parts[3] = {{L.wq, qkv, ld_qkv}, {L.wk, qkv + qd, ld_qkv}, {L.wv, qkv + qd + kvd, ld_qkv}};
      gemv(parts, 3, h, ld_e, n, false, stream);
    } else {
      linear(L.wq, h, ld_e, n, qkv, ld_qkv, false, ws, stream);
      linear(L.wk, h, ld_e, n, qkv + qd, ld_qkv, false, ws, stream);
      linear(L.wv, h, ld_e, n, qkv + qd + kvd, ld_qkv, false, ws, stream);
    }
    rope_store_kv(qkv, ld_qkv, n, c.n_head, c.n_head_kv, c.head_dim, rope_cos, rope_sin, d_pos, kc,
                  vc, stream);
    attention(qkv, ld_qkv, kc, vc, kvd, d_pos, n, c.n_head, c.n_head_kv, c.head_dim, att, ld_q, stream);
    linear(L.wo, att, ld_q, n, x, ld_e, true, ws, stream);  // residual: x += o(att)

    // ---- MLP ----
    norm_rows(layer_norm, x, ld_e, n, E, L.mlp_norm.w, L.mlp_norm.b, c.norm_eps, h, ld_e, stream);
    if (s.gated_mlp) {
      float* up = ff + ld_ff;  // [gate | up] side by side in each row
      if (n <= kGemvMaxTokens && L.w_gate.qtype == L.w_up.qtype) {
        const GemvPart parts[2] = {{L.w_gate, ff, ld_ffbuf}, {L.w_up, up, ld_ffbuf}};
        gemv(parts, 2, h, ld_e, n, false, stream);
      } else {
        linear(L.w_gate, h, ld_e, n, ff, ld_ffbuf, false, ws, stream);
        linear(L.w_up, h, ld_e, n, up, ld_ffbuf, false, ws, stream);
      }
      activate_mul(gpu_act(c.act), ff, up, ld_ffbuf, n, c.n_ff, stream);
    } else {
      linear(L.w_up, h, ld_e, n, ff, ld_ffbuf, false, ws, stream);
      activate(gpu_act(c.act), ff, ld_ffbuf, n, c.n_ff, stream);
    }
    linear(L.w_down, ff, ld_ffbuf, n, x, ld_e, true, ws, stream);  // residual
  }
}

void CudaSession::Impl::head(int64_t first, int64_t n) {
  const ModelConfig& c = *cfg;
  norm_rows(spec->norm == NormKind::LayerNorm, x + first * ld_e, ld_e, n, c.n_embd, w->final_norm.w,
            w->final_norm.b, c.norm_eps, h, ld_e, stream);
  linear(w->lm_head, h, ld_e, n, logits, ld_v, false, ws, stream);
}

void CudaSession::Impl::upload_meta(const int32_t* ids, int64_t n) {
  // The previous step has completed (every step ends with a synchronize), so h_meta is free.
  h_meta[0] = static_cast<int32_t>(pos);
  std::memcpy(h_meta + 1, ids, static_cast<std::size_t>(n) * sizeof(int32_t));
  QLLM_CUDA_CHECK(cudaMemcpyAsync(d_meta, h_meta, static_cast<std::size_t>(n + 1) * sizeof(int32_t),
                                  cudaMemcpyHostToDevice, stream));
}

// One batch of n <= n_batch tokens, then the head of the last one (logits and argmax). A single
// token runs as the captured graph.
void CudaSession::Impl::step(const int32_t* ids, int64_t n, bool /*greedy_head*/) {
  upload_meta(ids, n);
  if (n == 1 && use_graphs) {
    if (!graph) {
      cudaGraph_t g = nullptr;
      QLLM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
      run_blocks(1);
      head(0, 1);
      argmax(logits, cfg->n_vocab, d_next, nullptr, stream);
      QLLM_CUDA_CHECK(cudaStreamEndCapture(stream, &g));
      const cudaError_t e = cudaGraphInstantiate(&graph, g, 0);
      cudaGraphDestroy(g);
      QLLM_CUDA_CHECK(e);
    }
    QLLM_CUDA_CHECK(cudaGraphLaunch(graph, stream));
  } else {
    run_blocks(n);
    head(n - 1, 1);
    argmax(logits, cfg->n_vocab, d_next, nullptr, stream);
  }
  pos += n;
}

CudaSession::CudaSession(const CudaModel& model, int64_t n_ctx, bool exact_prefill) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.w = &model.impl();
  const Model& mdl = model.model();
  m.cfg = &mdl.config();
  m.spec = &mdl.spec();
  const ModelConfig& c = *m.cfg;
  if (n_ctx <= 0) n_ctx = c.n_ctx;
  if (n_ctx > c.n_ctx) fail_usage("context of {} tokens exceeds the model's maximum of {}", n_ctx, c.n_ctx);
  m.n_ctx = n_ctx;
  m.n_batch = std::min(kMaxBatch, n_ctx);
  m.use_graphs = graphs_enabled();
  m.ld_e = gpu_ld(c.n_embd);
  m.ld_q = gpu_ld(c.q_dim());
  m.ld_qkv = gpu_ld(c.q_dim() + 2 * c.kv_dim());
  m.ld_ff = gpu_ld(c.n_ff);
  m.ld_ffbuf = m.spec->gated_mlp ? 2 * m.ld_ff : m.ld_ff;
  m.ld_v = gpu_ld(c.n_vocab);

  QLLM_CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
  QLLM_CUBLAS_CHECK(cuda::cublas().create(&m.ws.handle));
  uint64_t& wsb = m.workspace_bytes;
  const int64_t B = m.n_batch;
  m.x = m.alloc<float>(B * m.ld_e, &wsb);
  m.h = m.alloc<float>(B * m.ld_e, &wsb);
  m.qkv = m.alloc<float>(B * m.ld_qkv, &wsb);
  m.att = m.alloc<float>(B * m.ld_q, &wsb);
  m.ff = m.alloc<float>(B * m.ld_ffbuf, &wsb);
  m.logits = m.alloc<float>(std::min(B, kHeadRows) * m.ld_v, &wsb);
  const int64_t max_ld = std::max({m.ld_e, m.ld_q, m.ld_ff});
  m.ws.x_elems = B * max_ld;
  m.ws.x_bf16 = m.alloc<uint16_t>(m.ws.x_elems, &wsb);
  // Enough for the largest matrix as f32, capped: bigger ones are dequantized in row blocks.
  int64_t biggest = c.n_vocab * m.ld_e;
  for (const DevLayer& L : m.w->layers)
    for (const GpuMatrix* g : {&L.wqkv, &L.wq, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
      biggest = std::max(biggest, g->n_out * g->ld);
  m.ws.w_bytes = std::max(std::min(4 * biggest, kDequantBytes), 4 * max_ld);
  m.ws.w_buf = m.alloc<uint8_t>(m.ws.w_bytes, &wsb);
  m.ws.exact = exact_prefill;
  m.d_meta = m.alloc<int32_t>(B + 1, &wsb);
  m.d_next = m.alloc<int32_t>(1, &wsb);
  QLLM_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&m.h_meta), static_cast<std::size_t>(B + 1) * sizeof(int32_t)));
  QLLM_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&m.h_next), sizeof(int32_t)));

  m.k_cache = m.alloc<float>(c.n_layer * n_ctx * c.kv_dim(), &m.kv_bytes);
  m.v_cache = m.alloc<float>(c.n_layer * n_ctx * c.kv_dim(), &m.kv_bytes);
  if (!m.spec->learned_pos) {
    // The CPU's tables (same float32 steps as transformers), uploaded once.
    const int64_t half = c.head_dim / 2;
    std::vector<float> cs(static_cast<std::size_t>(n_ctx * half)), sn(cs.size());
    ops::rope_tables(c.rope_theta, c.rope_scaling, c.head_dim, n_ctx, cs.data(), sn.data());
    m.rope_cos = m.alloc<float>(n_ctx * half, &wsb);
    m.rope_sin = m.alloc<float>(n_ctx * half, &wsb);
    QLLM_CUDA_CHECK(cudaMemcpy(m.rope_cos, cs.data(), cs.size() * 4, cudaMemcpyHostToDevice));
    QLLM_CUDA_CHECK(cudaMemcpy(m.rope_sin, sn.data(), sn.size() * 4, cudaMemcpyHostToDevice));
  }
  m.logits_host.resize(static_cast<std::size_t>(c.n_vocab));
}

CudaSession::~CudaSession() = default;

void CudaSession::reset() { impl_->pos = 0; }
int CudaSession::pos() const { return static_cast<int>(impl_->pos); }
int64_t CudaSession::n_ctx() const { return impl_->n_ctx; }
const Model& CudaSession::model() const { return *impl_->w->model; }

namespace {

void check_ids(const ModelConfig& c, std::span<const int32_t> ids, int64_t pos, int64_t n_ctx) {
  if (ids.empty()) fail_usage("no input tokens");
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= c.n_vocab)
      fail_usage("token id {} (input position {}) is outside the vocabulary (n_vocab = {})", ids[i],
                 i, c.n_vocab);
  if (pos + static_cast<int64_t>(ids.size()) > n_ctx)
    fail_usage("{} tokens at position {} exceed the context of {} tokens", ids.size(), pos, n_ctx);
}

}  // namespace

const float* CudaSession::forward(std::span<const int32_t> ids, bool all_logits) {
  Impl& m = *impl_;
  const ModelConfig& c = *m.cfg;
  check_ids(c, ids, m.pos, m.n_ctx);
  const auto n = static_cast<int64_t>(ids.size());
  const auto V = static_cast<std::size_t>(c.n_vocab);
  if (!all_logits) {
    for (int64_t off = 0; off < n; off += m.n_batch) {
      const int64_t k = std::min(m.n_batch, n - off);
      m.step(ids.data() + off, k, false);
      if (off + k < n) QLLM_CUDA_CHECK(cudaStreamSynchronize(m.stream));
    }
    QLLM_CUDA_CHECK(cudaMemcpyAsync(m.logits_host.data(), m.logits, V * 4, cudaMemcpyDeviceToHost, m.stream));
    QLLM_CUDA_CHECK(cudaStreamSynchronize(m.stream));
    return m.logits_host.data();
  }
  if (m.all_logits_host.size() < n * V) m.all_logits_host.resize(n * V);
  for (int64_t off = 0; off < n; off += m.n_batch) {
    const int64_t k = std::min(m.n_batch, n - off);
    m.upload_meta(ids.data() + off, k);
    m.run_blocks(k);
    m.pos += k;
    for (int64_t r = 0; r < k; r += kHeadRows) {
      const int64_t rows = std::min(kHeadRows, k - r);
      m.head(r, rows);
      QLLM_CUDA_CHECK(cudaMemcpy2DAsync(m.all_logits_host.data() + (off + r) * V, V * 4, m.logits,
                                        static_cast<std::size_t>(m.ld_v) * 4, V * 4,
                                        static_cast<std::size_t>(rows), cudaMemcpyDeviceToHost, m.stream));
      // The logits buffer is reused by the next head pass.
      QLLM_CUDA_CHECK(cudaStreamSynchronize(m.stream));
    }
  }
  return m.all_logits_host.data();
}

int32_t CudaSession::forward_greedy(std::span<const int32_t> ids) {
  Impl& m = *impl_;
  check_ids(*m.cfg, ids, m.pos, m.n_ctx);
  const auto n = static_cast<int64_t>(ids.size());
  for (int64_t off = 0; off < n; off += m.n_batch) {
    const int64_t k = std::min(m.n_batch, n - off);
    m.step(ids.data() + off, k, true);
    if (off + k < n) QLLM_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  }
  QLLM_CUDA_CHECK(cudaMemcpyAsync(m.h_next, m.d_next, sizeof(int32_t), cudaMemcpyDeviceToHost, m.stream));
  QLLM_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  return *m.h_next;
}

MemoryReport CudaSession::memory() const {
  const Impl& m = *impl_;
  MemoryReport r;
  r.weights = m.w->weight_bytes;
  r.host_embedding = m.w->host_bytes;
  r.kv_cache = m.kv_bytes;
  r.workspace = m.workspace_bytes;
  r.bf16_equivalent = 2 * m.w->bf16_params;
  std::size_t free = 0, total = 0;
  if (cudaMemGetInfo(&free, &total) == cudaSuccess) r.device_used = total - free;
  return r;
}

}  // namespace qllm::cuda

#endif  // QLLM_HAVE_CUDA
