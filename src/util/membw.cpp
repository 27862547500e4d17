#include "util/membw.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace qllm {
namespace {

using U64x8 = uint64_t __attribute__((vector_size(64), aligned(8)));

// Sums n words (n a multiple of 32) with four independent 64-byte sums, so several cache
// lines are in flight per core. Cloned per ISA: with AVX-512 each load is a whole line, the
// width the decode kernels stream at; the baseline SSE2 form measured ~15% less than they reach.
#if defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
uint64_t sum_words(const uint64_t* p, int64_t n) {
  U64x8 s0 = {}, s1 = {}, s2 = {}, s3 = {};
  const auto* v = reinterpret_cast<const U64x8*>(p);
  for (int64_t i = 0; i < n / 8; i += 4) {
    s0 += v[i];
    s1 += v[i + 1];
    s2 += v[i + 2];
    s3 += v[i + 3];
  }
  const U64x8 s = s0 + s1 + s2 + s3;
  uint64_t total = 0;
  for (int l = 0; l < 8; ++l) total += s[l];
  return total;
}

}  // namespace

double measure_read_bandwidth(ThreadPool& pool, std::size_t bytes, int reps) {
  constexpr int64_t kChunk = 4096;  // words; chunks are whole multiples, as sum_words needs
  const std::size_t n = bytes / sizeof(uint64_t) / kChunk * kChunk;
  std::unique_ptr<uint64_t[]> buf(new uint64_t[n]);
  // Touch every page from the threads that will read it, so each pass measures reads only.
  pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i);
  }, kChunk);
  std::vector<uint64_t> sinks(static_cast<std::size_t>(pool.size()) * 8);
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e) {
      sinks[static_cast<std::size_t>(b * pool.size() / static_cast<int64_t>(n)) * 8] += sum_words(buf.get() + b, e - b);
    }, kChunk);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 0) best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / s);
  }
  volatile uint64_t keep = 0;
  for (auto v : sinks) keep = keep + v;
  return best;
}

}  // namespace qllm
