#include "runtime/bench.h"

#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include "runtime/session.h"

namespace qllm {

double mean(std::span<const double> v) {
  if (v.empty()) return 0;
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double stddev(std::span<const double> v) {
  if (v.size() < 2) return 0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

DecodeTraffic decode_traffic(const Model& model) {
  const Weights& w = model.weights();
  const ModelConfig& cfg = model.config();
  DecodeTraffic t;
  for_each_linear(w, [&](const Linear& l) {
    if (l.w.data) t.weight_bytes += l.w.data_bytes() + l.w.scale_bytes();
  });
  t.weight_bytes += static_cast<uint64_t>(cfg.n_embd) * dtype_size(w.tok_embd.dtype);
  t.kv_bytes_per_position = 2 * static_cast<uint64_t>(cfg.n_layer) * cfg.n_head_kv * cfg.head_dim * sizeof(float);
  return t;
}

HugePageShare weight_page_share(const Model& model) {
  std::vector<std::span<const std::byte>> ranges;
  for_each_linear(model.weights(), [&](const Linear& l) {
    if (l.w.data) ranges.emplace_back(l.w.data, l.w.data_bytes());
  });
  return huge_page_share(ranges);
}

namespace {

std::vector<int32_t> random_ids(int64_t n, int64_t n_vocab) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(n_vocab - 1));
  std::vector<int32_t> ids(static_cast<std::size_t>(n));
  for (auto& id : ids) id = dist(rng);
  return ids;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

SpeedStats bench_prompt(const Model& model, int64_t n_prompt, int reps) {
  Session s(model, n_prompt);
  const auto ids = random_ids(n_prompt, model.config().n_vocab);
  s.forward(ids, false);  // warm-up: page in the weights
  SpeedStats st;
  st.n_tokens = n_prompt;
  for (int r = 0; r < reps; ++r) {
    s.reset();
    auto t0 = std::chrono::steady_clock::now();
    s.forward(ids, false);
    st.tokens_per_s.push_back(n_prompt / seconds_since(t0));
  }
  return st;
}

SpeedStats bench_generate(const Model& model, int64_t n_gen, int reps, const std::function<void()>& between_runs) {
  Session s(model, n_gen);
  const auto ids = random_ids(n_gen, model.config().n_vocab);
  s.forward(std::span(ids.data(), 1), false);  // warm-up
  SpeedStats st;
  st.n_tokens = n_gen;
  for (int r = 0; r < reps; ++r) {
    if (between_runs) between_runs();
    s.reset();
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < n_gen; ++i) s.forward(std::span(ids.data() + i, 1), false);
    st.tokens_per_s.push_back(n_gen / seconds_since(t0));
  }
  if (between_runs) between_runs();
  return st;
}

}  // namespace qllm
