// KvCache: keys and values of every layer for positions [0, n_ctx), preallocated.
//
// Layout per layer: [n_ctx, n_head_kv * head_dim] f32, so the projections of a batch of tokens
// are written straight into consecutive rows (the matmul output layout) and attention reads one
// head with a row stride of kv_dim.
#pragma once

#include <cstdint>
#include <vector>

namespace qllm {

struct KvCache {
  int64_t n_ctx = 0, kv_dim = 0;
  std::vector<float> k;  // [n_layer][n_ctx, kv_dim]
  std::vector<float> v;  // [n_layer][n_ctx, kv_dim]

  KvCache() = default;
  KvCache(int64_t n_layer, int64_t n_ctx_, int64_t kv_dim_)
      : n_ctx(n_ctx_), kv_dim(kv_dim_),
        k(static_cast<std::size_t>(n_layer * n_ctx_ * kv_dim_)),
        v(static_cast<std::size_t>(n_layer * n_ctx_ * kv_dim_)) {}

  float* k_row(int64_t layer, int64_t pos) { return k.data() + (layer * n_ctx + pos) * kv_dim; }
  float* v_row(int64_t layer, int64_t pos) { return v.data() + (layer * n_ctx + pos) * kv_dim; }
};

}  // namespace qllm
