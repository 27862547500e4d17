// Upload of a Model's weights to the GPU (see cuda_session.h).
#ifdef QLLM_HAVE_CUDA

#include <cuda_runtime_api.h>

#include <cstring>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gpu_layout.h"
#include "runtime/cuda/cuda_model_impl.h"
#include "util/error.h"

namespace qllm::cuda {
namespace {

QType float_qtype(DType d) {
  return d == DType::F16 ? QType::F16 : d == DType::BF16 ? QType::BF16 : QType::F32;
}

class Uploader {
 public:
  explicit Uploader(CudaModel::Impl& impl) : m_(impl) {}

  const void* bytes(const void* src, std::size_t n) {
    if (n == 0) return nullptr;
    void* d = nullptr;
    QLLM_CUDA_CHECK(cudaMalloc(&d, n));
    m_.device_allocs.push_back(d);
    QLLM_CUDA_CHECK(cudaMemcpy(d, src, n, cudaMemcpyHostToDevice));
    m_.weight_bytes += n;
    return d;
  }
  const float* floats(const std::vector<float>& v) {
    return static_cast<const float*>(bytes(v.data(), v.size() * sizeof(float)));
  }

  GpuMatrix linear(const Linear& l, const std::string& what) {
    const QTensor& w = l.w;
    if (!w.data) return {};
    if (!gpu_supports(w))
      fail(m_.model->dir(), "{}: group size {} of {} weights cannot run on CUDA (expected a multiple of 32 or {})",
           what, w.group_size, qtype_name(w.qtype), w.n_in);
    GpuLayout lay = gpu_layout(w);
    GpuMatrix g;
    g.qtype = lay.qtype;
    g.n_out = lay.n_out;
    g.n_in = lay.n_in;
    g.ld = lay.ld;
    g.group_size = lay.group_size;
    g.data = bytes(lay.data.data(), lay.data.size());
    g.scale = floats(lay.scale);
    g.shift = floats(lay.shift);
    g.bias = floats(l.bias);
    m_.bf16_params += static_cast<uint64_t>(w.n_out * w.n_in) + l.bias.size();
    return g;
  }

  DevNorm norm(const NormWeights& n) {
    m_.bf16_params += n.w.size() + n.b.size();
    return {floats(n.w), floats(n.b)};
  }

 private:
  CudaModel::Impl& m_;
};

}  // namespace

CudaModel::Impl::~Impl() {
  for (void* p : device_allocs) cudaFree(p);
  if (host_alloc) cudaFreeHost(host_alloc);
}

CudaModel::CudaModel(const Model& model) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.model = &model;
  const Weights& w = model.weights();
  Uploader up(m);
  m.layers.resize(w.layers.size());
  for (std::size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& L = w.layers[l];
    DevLayer& D = m.layers[l];
    const std::string p = "layer " + std::to_string(l);
    D.attn_norm = up.norm(L.attn_norm);
    D.mlp_norm = up.norm(L.mlp_norm);
    D.wqkv = up.linear(L.wqkv, p + " qkv");
    D.wq = up.linear(L.wq, p + " q");
    D.wk = up.linear(L.wk, p + " k");
    D.wv = up.linear(L.wv, p + " v");
    D.wo = up.linear(L.wo, p + " o");
    D.w_gate = up.linear(L.w_gate, p + " gate");
    D.w_up = up.linear(L.w_up, p + " up");
    D.w_down = up.linear(L.w_down, p + " down");
  }
  m.final_norm = up.norm(w.final_norm);

  // A tied float head is the embedding itself: upload it once, as the head's matrix, and let
  // the embedding lookup read its rows there.
  const bool tied = w.lm_head.w.data == w.tok_embd.data && is_float_qtype(w.lm_head.w.qtype);
  m.lm_head = up.linear(w.lm_head, "lm_head");
  if (tied) m.bf16_params -= static_cast<uint64_t>(w.lm_head.w.n_out * w.lm_head.w.n_in);
  m.bf16_params += static_cast<uint64_t>(w.tok_embd.n_rows * w.tok_embd.n_cols);
  m.tok_type = float_qtype(w.tok_embd.dtype);
  if (tied) {
    m.tok = m.lm_head.data;
    m.ld_tok = m.lm_head.ld;
  } else {
    const std::size_t n = static_cast<std::size_t>(w.tok_embd.n_rows * w.tok_embd.n_cols) *
                          dtype_size(w.tok_embd.dtype);
    QLLM_CUDA_CHECK(cudaHostAlloc(&m.host_alloc, n, cudaHostAllocMapped));
    std::memcpy(m.host_alloc, w.tok_embd.data, n);
    void* dev = nullptr;
    QLLM_CUDA_CHECK(cudaHostGetDevicePointer(&dev, m.host_alloc, 0));
    m.tok = dev;
    m.ld_tok = w.tok_embd.n_cols;
    m.host_bytes = n;
  }
  if (w.pos_embd.data) {
    const std::size_t n = static_cast<std::size_t>(w.pos_embd.n_rows * w.pos_embd.n_cols) *
                          dtype_size(w.pos_embd.dtype);
    m.pos = up.bytes(w.pos_embd.data, n);
    m.pos_type = float_qtype(w.pos_embd.dtype);
    m.ld_pos = w.pos_embd.n_cols;
    m.bf16_params += static_cast<uint64_t>(w.pos_embd.n_rows * w.pos_embd.n_cols);
  }
}

CudaModel::~CudaModel() = default;

const Model& CudaModel::model() const { return *impl_->model; }

}  // namespace qllm::cuda

#endif  // QLLM_HAVE_CUDA
