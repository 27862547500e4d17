#include "runtime/session.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/matmul.h"
#include "runtime/ops.h"
#include "util/error.h"

namespace qllm {

Session::Session(const Model& model, int64_t n_ctx)
    : model_(&model), cfg_(&model.config()), pool_(&ThreadPool::global()) {
  const ModelConfig& c = *cfg_;
  if (n_ctx <= 0) n_ctx = c.n_ctx;
  if (n_ctx > c.n_ctx)
    fail_usage("context of {} tokens exceeds the model's maximum of {}", n_ctx, c.n_ctx);
  n_ctx_ = n_ctx;
  const ArchSpec& s = model.spec();
  act_ = Activations(c, std::min(kMaxBatch, n_ctx_), n_ctx_, s.fused_qkv, s.gated_mlp);
  kv_ = KvCache(c.n_layer, n_ctx_, c.kv_dim());
  if (!s.learned_pos) {
    const auto n = static_cast<std::size_t>(n_ctx_ * (c.head_dim / 2));
    rope_cos_.resize(n);
    rope_sin_.resize(n);
    ops::rope_tables(c.rope_theta, c.rope_scaling, c.head_dim, n_ctx_, rope_cos_.data(), rope_sin_.data());
  }
}

const float* Session::forward(std::span<const int32_t> ids, bool all_logits) {
  const ModelConfig& c = *cfg_;
  const auto n = static_cast<int64_t>(ids.size());
  if (n == 0) fail_usage("no input tokens");
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= c.n_vocab)
      fail_usage("token id {} (input position {}) is outside the vocabulary (n_vocab = {})", ids[i],
                 i, c.n_vocab);
  if (pos_ + n > n_ctx_)
    fail_usage("{} tokens at position {} exceed the context of {} tokens", n, pos_, n_ctx_);
  if (all_logits && all_logits_.size() < static_cast<std::size_t>(n * c.n_vocab))
    all_logits_.resize(static_cast<std::size_t>(n * c.n_vocab));

  int64_t last_chunk = 0;
  for (int64_t off = 0; off < n; off += act_.n_batch) {
    const int64_t m = std::min(act_.n_batch, n - off);
    run_blocks(ids.data() + off, m);
    if (all_logits) head(0, m, all_logits_.data() + off * c.n_vocab);
    last_chunk = m;
  }
  if (all_logits) return all_logits_.data();
  head(last_chunk - 1, 1, act_.logits.data());
  return act_.logits.data();
}

void Session::run_blocks(const int32_t* ids, int64_t n) {
  const ModelConfig& c = *cfg_;
  const ArchSpec& s = model_->spec();
  const Weights& w = model_->weights();
  const int64_t E = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim();
  ThreadPool& pool = *pool_;

  // ---- embeddings ----
  for (int64_t t = 0; t < n; ++t) {
    float* x = act_.x.data() + t * E;
    w.tok_embd.row(ids[t], x);
    if (s.learned_pos) {
      float* p = act_.h.data();  // scratch: h is overwritten by the first norm
      w.pos_embd.row(pos_ + t, p);
      for (int64_t i = 0; i < E; ++i) x[i] += p[i];
    }
  }

  // The per-token steps between matmuls (norms, residual adds, RoPE) split over the pool for
  // prompts: on one thread they took a growing share of a many-core prefill.
  constexpr int64_t kParallelMinTokens = 4;
  auto for_tokens = [&](auto&& fn) {
    if (n >= kParallelMinTokens) pool.parallel_for(n, fn);
    else fn(int64_t{0}, n);
  };
  auto norm_rows = [&](const NormWeights& nw) {
    for_tokens([&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const float* x = act_.x.data() + t * E;
        float* h = act_.h.data() + t * E;
        if (s.norm == NormKind::LayerNorm) {
          ops::layer_norm(x, nw, E, c.norm_eps, h);
        } else {
          ops::rms_norm(x, nw, E, c.norm_eps, h);
        }
      }
    });
  };
  auto add_residual = [&] {
    for_tokens([&](int64_t b, int64_t e) {
      for (int64_t i = b * E; i < e * E; ++i) act_.x[i] += act_.proj[i];
    });
  };

  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LayerWeights& L = w.layers[static_cast<std::size_t>(l)];

    // ---- attention ----
    norm_rows(L.attn_norm);
    if (linear_input_hook) linear_input_hook(s.fused_qkv ? Role::AttnQkv : Role::AttnQ, int(l), act_.h.data(), n, E);
    if (s.fused_qkv) {
      linear(L.wqkv, act_.h.data(), n, act_.qkv.data(), pool);
      const int64_t row = qd + 2 * kvd;
      for (int64_t t = 0; t < n; ++t) {
        const float* src = act_.qkv.data() + t * row;
        std::memcpy(act_.q.data() + t * qd, src, sizeof(float) * qd);
        std::memcpy(kv_.k_row(l, pos_ + t), src + qd, sizeof(float) * kvd);
        std::memcpy(kv_.v_row(l, pos_ + t), src + qd + kvd, sizeof(float) * kvd);
      }
    } else {
      // K and V rows of consecutive positions are contiguous: project straight into the cache.
      const LinearOut qkv[] = {{&L.wq, act_.q.data()}, {&L.wk, kv_.k_row(l, pos_)}, {&L.wv, kv_.v_row(l, pos_)}};
      linear_same_input(qkv, act_.h.data(), n, pool);
    }
    if (!s.learned_pos) {
      const int64_t half = c.head_dim / 2;
      for_tokens([&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          const float* cs = rope_cos_.data() + (pos_ + t) * half;
          const float* sn = rope_sin_.data() + (pos_ + t) * half;
          ops::rope(act_.q.data() + t * qd, c.n_head, c.head_dim, cs, sn);
          ops::rope(kv_.k_row(l, pos_ + t), c.n_head_kv, c.head_dim, cs, sn);
        }
      });
    }
    attention(l, n);
    if (linear_input_hook) linear_input_hook(Role::AttnOut, int(l), act_.att.data(), n, qd);
    linear(L.wo, act_.att.data(), n, act_.proj.data(), pool);
    add_residual();

    // ---- MLP ----
    norm_rows(L.mlp_norm);
    if (linear_input_hook) linear_input_hook(s.gated_mlp ? Role::MlpGate : Role::MlpUp, int(l), act_.h.data(), n, E);
    // The activation costs a libm call per element (tanh, exp): 5M for a GPT-2 prefill of 128
    // tokens, 15% of its time in one thread, so it is split over the pool like the matmuls.
    float* ff_a = act_.ff_a.data();
    const float* ff_b = act_.ff_b.data();
    if (s.gated_mlp) {
      const LinearOut gate_up[] = {{&L.w_gate, ff_a}, {&L.w_up, act_.ff_b.data()}};
      linear_same_input(gate_up, act_.h.data(), n, pool);
      pool.parallel_for(n * c.n_ff, [&](int64_t b, int64_t e) { ops::activate_mul(c.act, ff_a + b, ff_b + b, e - b); });
    } else {
      linear(L.w_up, act_.h.data(), n, ff_a, pool);
      pool.parallel_for(n * c.n_ff, [&](int64_t b, int64_t e) { ops::activate(c.act, ff_a + b, e - b); });
    }
    if (linear_input_hook) linear_input_hook(Role::MlpDown, int(l), act_.ff_a.data(), n, c.n_ff);
    linear(L.w_down, act_.ff_a.data(), n, act_.proj.data(), pool);
    add_residual();
  }
  pos_ += n;
}

void Session::attention(int64_t layer, int64_t n) {
  const ModelConfig& c = *cfg_;
  const int64_t hd = c.head_dim, qd = c.q_dim(), kvd = c.kv_dim();
  const int64_t group = c.n_head / c.n_head_kv;  // query heads per KV head (GQA)
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const float* k0 = kv_.k_row(layer, 0);
  const float* v0 = kv_.v_row(layer, 0);
  // Heads are independent; each uses its own row of `scores`. Token t sees positions
  // [0, pos_ + t] (causal mask).
  auto heads = [&](int64_t b, int64_t e) {
    for (int64_t h = b; h < e; ++h) {
      const int64_t kvh = h / group;
      float* scores = act_.scores.data() + h * n_ctx_;
      for (int64_t t = 0; t < n; ++t)
        ops::attend(act_.q.data() + t * qd + h * hd, k0 + kvh * hd, v0 + kvh * hd, kvd,
                    pos_ + t + 1, hd, scale, scores, act_.att.data() + t * qd + h * hd);
    }
  };
  // Waking the pool costs microseconds; tiny attentions (short contexts, tiny models) run inline.
  constexpr int64_t kMinParallelWork = 1 << 15;
  const int64_t work = c.n_head * n * (pos_ + n) * hd;
  if (work < kMinParallelWork) {
    heads(0, c.n_head);
  } else {
    pool_->parallel_for(c.n_head, heads);
  }
}

void Session::head(int64_t first, int64_t n, float* out) {
  const ModelConfig& c = *cfg_;
  const Weights& w = model_->weights();
  const int64_t E = c.n_embd;
  for (int64_t r = 0; r < n; ++r) {
    const float* x = act_.x.data() + (first + r) * E;
    float* h = act_.h.data() + r * E;
    if (model_->spec().norm == NormKind::LayerNorm) {
      ops::layer_norm(x, w.final_norm, E, c.norm_eps, h);
    } else {
      ops::rms_norm(x, w.final_norm, E, c.norm_eps, h);
    }
  }
  if (linear_input_hook) linear_input_hook(Role::LmHead, -1, act_.h.data(), n, E);
  linear(w.lm_head, act_.h.data(), n, out, *pool_);
}

}  // namespace qllm
