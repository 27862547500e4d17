#include "util/membw.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "util/cpu_cache.h"

namespace qllm {
namespace {

// Sums n words (n a multiple of 32) four 64-byte lines per step, each vector with its own
// running sum, so several cache lines are in flight per core.
template <class V>
[[gnu::always_inline]] inline uint64_t sum_lines(const uint64_t* p, int64_t n) {
  constexpr int kVectors = 256 / sizeof(V);  // four lines
  V acc[kVectors] = {};
  const auto* v = reinterpret_cast<const V*>(p);
  for (int64_t i = 0; i < n * 8 / static_cast<int64_t>(sizeof(V)); i += kVectors)
    for (int k = 0; k < kVectors; ++k) acc[k] += v[i + k];
  uint64_t total = 0;
  for (int k = 0; k < kVectors; ++k)
    for (std::size_t l = 0; l < sizeof(V) / 8; ++l) total += acc[k][l];
  return total;
}

// One copy per vector width, each compiled for its ISA: the loads are as wide as the decode
// kernels' (whole lines with AVX-512), and no clone splits a vector wider than its registers
// (GCC lowers such a vector through the stack: a 64-byte vector under AVX2 read 40% below the
// machine's bandwidth).
using U64x2 = uint64_t __attribute__((vector_size(16), aligned(8)));
uint64_t sum_words_sse2(const uint64_t* p, int64_t n) { return sum_lines<U64x2>(p, n); }
#if defined(__x86_64__)
using U64x4 = uint64_t __attribute__((vector_size(32), aligned(8)));
using U64x8 = uint64_t __attribute__((vector_size(64), aligned(8)));
__attribute__((target("avx2"))) uint64_t sum_words_avx2(const uint64_t* p, int64_t n) { return sum_lines<U64x4>(p, n); }
__attribute__((target("avx512f"))) uint64_t sum_words_avx512(const uint64_t* p, int64_t n) { return sum_lines<U64x8>(p, n); }
#endif

uint64_t sum_words(const uint64_t* p, int64_t n) {
#if defined(__x86_64__)
  static const auto fn = __builtin_cpu_supports("avx512f") ? sum_words_avx512
                         : __builtin_cpu_supports("avx2")  ? sum_words_avx2
                                                           : sum_words_sse2;
  return fn(p, n);
#else
  return sum_words_sse2(p, n);
#endif
}

// Chunk of the parallel split, in words: chunks are whole multiples, as sum_words needs.
constexpr int64_t kChunkWords = 4096;

}  // namespace

std::size_t ReadBandwidthProbe::default_bytes() {
  return std::max(std::size_t{512} << 20, 4 * last_level_cache_bytes());
}

ReadBandwidthProbe::ReadBandwidthProbe(ThreadPool& pool, std::size_t bytes)
    : pool_(pool),
      n_(std::max<std::size_t>(bytes / sizeof(uint64_t) / kChunkWords, 1) * kChunkWords),
      buf_(n_ * sizeof(uint64_t)),
      sinks_(static_cast<std::size_t>(pool.size()) * 8) {
  // Touch every page from the threads that will read it, so each pass measures reads only.
  pool_.parallel_for(static_cast<int64_t>(n_), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) words()[i] = static_cast<uint64_t>(i);
  }, kChunkWords);
}

double ReadBandwidthProbe::measure(int passes) {
  const auto n = static_cast<int64_t>(n_);
  double best = 0;
  for (int r = 0; r < passes; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    pool_.parallel_for(n, [&](int64_t b, int64_t e) {
      sinks_[static_cast<std::size_t>(b * pool_.size() / n) * 8] += sum_words(words() + b, e - b);
    }, kChunkWords);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 0) best = std::max(best, static_cast<double>(bytes()) / s);
  }
  volatile uint64_t keep = 0;
  for (auto v : sinks_) keep = keep + v;
  return best;
}

double measure_read_bandwidth(ThreadPool& pool, std::size_t bytes, int reps) {
  return ReadBandwidthProbe(pool, bytes).measure(reps);
}

}  // namespace qllm
