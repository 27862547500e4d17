// The GPU benchmark of cuda_bench.h. Prompt speed: one forward of n_prompt tokens (batched, the
// cuBLAS path) from an empty cache, to the argmax of the last token. Generation speed: n_gen
// greedy decode steps (one CUDA graph each) after a one-token prompt, timed on the host around
// the whole loop, so it includes every launch, copy and synchronisation a user sees. Token ids
// are fixed pseudo-random (random weights have no meaningful text).
#include "runtime/cuda/cuda_bench.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "runtime/bench.h"
#include "runtime/cuda/cuda_session.h"
#include "util/error.h"

#ifdef QLLM_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "kernels/cuda/cuda_check.h"
#endif

namespace qllm::cuda {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Device-to-device copy bandwidth, bytes read + written per second (median of 10 copies of
// 1 GiB), the practical ceiling of a bandwidth-bound kernel.
double copy_bandwidth() {
#ifdef QLLM_HAVE_CUDA
  const std::size_t n = std::size_t{1} << 30;
  void *a = nullptr, *b = nullptr;
  QLLM_CUDA_CHECK(cudaMalloc(&a, n));
  QLLM_CUDA_CHECK(cudaMalloc(&b, n));
  QLLM_CUDA_CHECK(cudaMemset(a, 1, n));
  cudaEvent_t e0, e1;
  QLLM_CUDA_CHECK(cudaEventCreate(&e0));
  QLLM_CUDA_CHECK(cudaEventCreate(&e1));
  std::vector<float> ms;
  for (int i = 0; i < 13; ++i) {
    QLLM_CUDA_CHECK(cudaEventRecord(e0));
    QLLM_CUDA_CHECK(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice));
    QLLM_CUDA_CHECK(cudaEventRecord(e1));
    QLLM_CUDA_CHECK(cudaEventSynchronize(e1));
    float t = 0;
    QLLM_CUDA_CHECK(cudaEventElapsedTime(&t, e0, e1));
    if (i >= 3) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(b);
  return 2.0 * static_cast<double>(n) / (ms[ms.size() / 2] * 1e-3);
#else
  return 0;
#endif
}

}  // namespace

int run_bench(const BenchOptions& o) {
  if (o.n_prompt < 1 || o.n_gen < 1 || o.reps < 1)
    fail_usage("bench: -p and -n must be >= 1 and -r >= 1 with --device cuda");
  if (!device_available()) fail_usage("bench --device cuda: {}", device_description());
  auto t0 = Clock::now();
  auto model = Model::load(o.model_dir);
  const double load_s = seconds_since(t0);
  const ModelConfig& cfg = model->config();
  if (o.n_prompt + o.n_gen + 1 > cfg.n_ctx)
    fail_usage("bench: -p + -n exceed the model's context of {}", cfg.n_ctx);
  t0 = Clock::now();
  CudaModel gpu(*model);
  const double upload_s = seconds_since(t0);
  CudaSession s(gpu, o.n_prompt + o.n_gen + 1);

  std::mt19937 rng(1234);
  std::vector<int32_t> prompt(static_cast<std::size_t>(o.n_prompt));
  for (auto& id : prompt) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(cfg.n_vocab));

  // Warm-up: cuBLAS heuristics, graph capture, first-touch of the mapped embedding.
  s.reset();
  s.forward_greedy(prompt);
  int32_t id = s.forward_greedy({&prompt[0], 1});
  for (int i = 0; i < 4; ++i) id = s.forward_greedy({&id, 1});

  SpeedStats pp, tg;
  for (int r = 0; r < o.reps; ++r) {
    s.reset();
    t0 = Clock::now();
    s.forward_greedy(prompt);
    pp.tokens_per_s.push_back(static_cast<double>(o.n_prompt) / seconds_since(t0));
  }
  for (int r = 0; r < o.reps; ++r) {
    s.reset();
    id = s.forward_greedy({&prompt[0], 1});
    t0 = Clock::now();
    for (int64_t i = 0; i < o.n_gen; ++i) id = s.forward_greedy({&id, 1});
    tg.tokens_per_s.push_back(static_cast<double>(o.n_gen) / seconds_since(t0));
  }
  const MemoryReport mem = s.memory();
  const double bw = copy_bandwidth();
  // Bytes one decode step must read: every device weight once (the embedding row is noise) and
  // the average KV cache of the run (K and V, f32).
  const double kv_per_pos = 2.0 * 4.0 * static_cast<double>(cfg.n_layer * cfg.kv_dim());
  const double bytes_per_token = static_cast<double>(mem.weights) + kv_per_pos * (o.n_gen + 2) / 2.0;
  const double achieved = tg.mean() * bytes_per_token;
  const double mib = 1048576.0;

  if (o.json) {
    nlohmann::json j;
    j["model"] = o.model_dir;
    j["device"] = device_description();
    j["load_seconds"] = load_s;
    j["upload_seconds"] = upload_s;
    j["pp"] = {{"n", o.n_prompt}, {"tokens_per_s", pp.mean()}, {"stddev", pp.stddev()}, {"runs", pp.tokens_per_s}};
    j["tg"] = {{"n", o.n_gen}, {"tokens_per_s", tg.mean()}, {"stddev", tg.stddev()}, {"runs", tg.tokens_per_s}};
    j["vram"] = {{"weights", mem.weights},   {"kv_cache", mem.kv_cache},
                 {"workspace", mem.workspace}, {"host_embedding", mem.host_embedding},
                 {"bf16_equivalent", mem.bf16_equivalent}, {"device_used", mem.device_used},
                 {"weights_over_bf16", static_cast<double>(mem.weights) / mem.bf16_equivalent}};
    j["copy_bandwidth_bytes_per_s"] = bw;
    j["tg_bytes_per_token"] = bytes_per_token;
    j["tg_bandwidth_bytes_per_s"] = achieved;
    j["tg_fraction_of_copy_bandwidth"] = achieved / bw;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model       %s\n", o.model_dir.c_str());
  std::printf("device      %s\n", device_description().c_str());
  std::printf("load        %.3f s (+ %.3f s upload)\n", load_s, upload_s);
  std::printf("VRAM        weights %.1f MiB (%.3f x bf16's %.1f MiB), KV cache %.1f MiB, workspace %.1f MiB;\n"
              "            token embedding in host memory %.1f MiB; device in use %.1f MiB\n",
              mem.weights / mib, static_cast<double>(mem.weights) / mem.bf16_equivalent,
              mem.bf16_equivalent / mib, mem.kv_cache / mib, mem.workspace / mib,
              mem.host_embedding / mib, mem.device_used / mib);
  std::printf("\n| test   |             t/s |\n|--------|-----------------|\n");
  std::printf("| pp%-4lld | %8.1f ± %5.1f |\n", static_cast<long long>(o.n_prompt), pp.mean(), pp.stddev());
  std::printf("| tg%-4lld | %8.1f ± %5.1f |\n", static_cast<long long>(o.n_gen), tg.mean(), tg.stddev());
  std::printf("\ngeneration reads %.1f MiB per token: %.0f GB/s, %.0f%% of the %.0f GB/s device copy bandwidth\n",
              bytes_per_token / mib, achieved / 1e9, 100.0 * achieved / bw, bw / 1e9);
  return 0;
}

}  // namespace qllm::cuda
