// Kernel microbenchmarks: matmul per QType and shape (decode n_tok = 1, prefill n_tok = 128),
// this machine's streaming read bandwidth, the peak rate of the integer kernels' multiply, and
// the cost of an empty parallel_for.
//
// Decode runs cycle through enough copies of the weights to exceed the last-level cache, so
// GB/s is what a whole-model decode sees (weights from DRAM), not a cache-resident figure.
// Counters: GB/s = weight bytes (data + scales) per second; GOP/s = 2 * n_out * n_in * n_tok
// per second, over wall time; with QLLM_BENCH_CPU_TIME=1 over the calling thread's CPU time
// instead (for a machine shared with other work, run with QLLM_THREADS=1). Run e.g.
//   bench_matmul --benchmark_filter='decode/int8' --benchmark_min_time=0.3
#include <benchmark/benchmark.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "format/convert.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/prepare.h"
#include "util/membw.h"

namespace qllm {
namespace {

constexpr uint64_t kColdBytes = 768ull << 20;  // > 2x the 260 MiB L3 of the reference machine

ThreadPool& pool() { return ThreadPool::global(); }

uint64_t next(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

// A random weight matrix in the loaded-and-prepared form, its bytes copied `copies` times.
struct Weights {
  std::vector<QTensor> copies;
  uint64_t bytes = 0;  // per copy: data + scales
};

QTensor random_tensor(QType q, int64_t n_out, int64_t n_in, bool transposed) {
  QTensor w;
  w.qtype = q;
  w.n_out = n_out;
  w.n_in = n_in;
  w.transposed = transposed;
  w.scale_dtype = DType::BF16;
  if (qtype_info(q).affine) {
    w.group_size = 128;
    while (n_in % w.group_size != 0 && w.group_size > 32) w.group_size -= 32;
    if (n_in % w.group_size != 0 || n_in <= 128) w.group_size = n_in;
  }
  w.owned = HugePageBuffer(w.data_bytes());
  uint64_t s = 0x9e3779b97f4a7c15ull;
  auto* d = reinterpret_cast<uint8_t*>(w.owned.data());
  const uint64_t n = w.owned.size();
  if (q == QType::F32 || q == QType::F16 || q == QType::BF16) {
    const uint64_t n_el = n / (q == QType::F32 ? 4 : 2);
    for (uint64_t i = 0; i < n_el; ++i) {
      const float v = static_cast<float>(static_cast<int64_t>(next(s) % 2001) - 1000) / 1000.0f;
      if (q == QType::F32) std::memcpy(d + 4 * i, &v, 4);
      else {
        const uint16_t h = q == QType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
        std::memcpy(d + 2 * i, &h, 2);
      }
    }
  } else {
    for (uint64_t i = 0; i < n; ++i) d[i] = static_cast<uint8_t>(next(s) % 0x7f);
  }
  w.data = w.owned.data();
  if (q == QType::QInt8 || q == QType::QFloat8) w.scale.assign(n_out, 0.01f);
  if (qtype_info(q).affine) {
    w.scale.assign(w.n_groups(), 0.01f);
    w.shift.assign(w.n_groups(), 0.05f);
  }
  return w;
}

// Prepared in the layout `kt`'s kernels read.
std::unique_ptr<Weights> make_weights(const KernelTable& kt, QType q, int64_t n_out, int64_t n_in,
                                      bool transposed, bool cold) {
  auto ws = std::make_unique<Weights>();
  QTensor w = random_tensor(q, n_out, n_in, transposed);
  prepare_for_kernels(w, kernel_layout(kt, w));
  ws->bytes = w.owned.size() + w.scale_bytes();
  const uint64_t copies = cold ? (kColdBytes + ws->bytes - 1) / ws->bytes : 1;
  for (uint64_t c = 1; c < copies; ++c) {
    QTensor cp = w;  // copies owned bytes; repoint data
    cp.data = cp.owned.data();
    ws->copies.push_back(std::move(cp));
  }
  w.data = w.owned.data();
  ws->copies.push_back(std::move(w));
  for (auto& cp : ws->copies) cp.data = cp.owned.data();
  return ws;
}

void run_matmul(benchmark::State& state, QType q, int64_t n_out, int64_t n_in, int64_t n_tok,
                bool transposed, Isa isa, bool cold) {
  const KernelTable* kt = kernel_table(isa);
  if (kt == nullptr) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  const auto ws = make_weights(*kt, q, n_out, n_in, transposed, cold);
  std::vector<float> x(n_tok * n_in), y(n_tok * n_out);
  uint64_t s = 12345;
  for (auto& v : x) v = static_cast<float>(static_cast<int64_t>(next(s) % 2001) - 1000) / 500.0f;
  size_t i = 0;
  for (auto _ : state) {
    matmul(ws->copies[i], x.data(), n_tok, y.data(), pool(), *kt);
    benchmark::DoNotOptimize(y.data());
    i = (i + 1) % ws->copies.size();
  }
  const double iters = static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(iters * ws->bytes / 1e9, benchmark::Counter::kIsRate);
  state.counters["GOP/s"] =
      benchmark::Counter(iters * 2.0 * n_out * n_in * n_tok / 1e9, benchmark::Counter::kIsRate);
  if (n_tok > 1)
    state.counters["tok/s"] = benchmark::Counter(iters * n_tok, benchmark::Counter::kIsRate);
}

// Load-time repacking of int4/int2 weights (prepare.h), per weight byte.
void run_prepare(benchmark::State& state, QType q, int64_t n_out, int64_t n_in) {
  const QTensor planar = random_tensor(q, n_out, n_in, false);
  for (auto _ : state) {
    state.PauseTiming();
    QTensor w = planar;
    w.data = w.owned.data();
    state.ResumeTiming();
    prepare_for_kernels(w);
    benchmark::DoNotOptimize(w.data);
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * planar.owned.size() / 1e9,
                                              benchmark::Counter::kIsRate);
}

// Streaming read of a buffer much larger than the caches, split over the pool's threads.
void BM_MemoryReadBandwidth(benchmark::State& state) {
  // The same measurement `qllm bench` prints (util/membw.h), one pass per iteration.
  double gbs = 0.0;
  for (auto _ : state) gbs = std::max(gbs, measure_read_bandwidth(pool(), kColdBytes, 1) / 1e9);
  state.counters["GB/s"] = gbs;
}

// The peak rate of the multiply the int8/int4/int2 kernels with int16 activations are built on
// (int16 pairs summed into int32 lanes): independent chains of it on every pool thread, enough
// of them to cover its latency. GOP/s counts two per product, as the matmul counters do, so a
// kernel's GOP/s over this is the share of the multiplier it uses: the roof its GB/s would
// meet if multiplies were all it did. On one Zen 3 core `vpmaddwd` ran at two per cycle.
#if defined(__x86_64__)
// Every loop over the chains is unrolled, so that they live in registers.
constexpr int kMaddChains = 12;
__attribute__((target("avx2"))) int64_t madd_chains_avx2(int64_t iters) {
  __m256i c[kMaddChains];
  const __m256i b = _mm256_set1_epi16(3);
#pragma GCC unroll 16
  for (int k = 0; k < kMaddChains; ++k) c[k] = _mm256_set1_epi16(static_cast<int16_t>(k));
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 16
    for (int k = 0; k < kMaddChains; ++k) {
      c[k] = _mm256_madd_epi16(c[k], b);
      asm volatile("" : "+x"(c[k]));  // one multiply per chain and step, none merged or hoisted
    }
  __m256i t = c[0];
#pragma GCC unroll 16
  for (int k = 1; k < kMaddChains; ++k) t = _mm256_add_epi32(t, c[k]);
  return _mm256_extract_epi32(t, 0);
}
__attribute__((target("avx512f,avx512vnni"))) int64_t madd_chains_avx512(int64_t iters) {
  __m512i c[kMaddChains];
  const __m512i a = _mm512_set1_epi16(5), b = _mm512_set1_epi16(3);
#pragma GCC unroll 16
  for (int k = 0; k < kMaddChains; ++k) c[k] = _mm512_set1_epi32(k);
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 16
    for (int k = 0; k < kMaddChains; ++k) {
      c[k] = _mm512_dpwssd_epi32(c[k], a, b);
      asm volatile("" : "+v"(c[k]));
    }
  int64_t sum = 0;
  alignas(64) int32_t lanes[16];
#pragma GCC unroll 16
  for (int k = 0; k < kMaddChains; ++k) {
    _mm512_store_si512(lanes, c[k]);
    sum += lanes[k % 16];
  }
  return sum;
}

void run_peak_madd(benchmark::State& state, Isa isa) {
  if (!isa_supported(isa)) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  constexpr int64_t kIters = 1 << 16;
  const int64_t products_per_op = isa == Isa::Avx512 ? 32 : 16;
  std::vector<int64_t> sinks(static_cast<std::size_t>(pool().size()) * 8);
  for (auto _ : state)
    pool().for_each_thread([&](int t) {
      sinks[static_cast<std::size_t>(t) * 8] += isa == Isa::Avx512 ? madd_chains_avx512(kIters) : madd_chains_avx2(kIters);
    });
  benchmark::DoNotOptimize(sinks.data());
  const double products = static_cast<double>(state.iterations()) * pool().size() * kIters * kMaddChains * products_per_op;
  state.counters["GOP/s"] = benchmark::Counter(2.0 * products / 1e9, benchmark::Counter::kIsRate);
}
#endif

// Overhead of one parallel_for with no work: the fixed cost every matmul call pays.
void BM_EmptyParallelFor(benchmark::State& state) {
  for (auto _ : state) pool().parallel_for(1024, [](int64_t, int64_t) {}, 16);
  state.counters["calls/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

struct BenchShape {
  const char* model;
  int64_t n_out, n_in;
};
const BenchShape kShapes[] = {
    {"qwen2", 896, 896},  {"qwen2", 4864, 896}, {"qwen2", 896, 4864}, {"qwen2", 151936, 896},
    {"gpt2", 768, 768},   {"gpt2", 3072, 768},  {"gpt2", 768, 3072},
    // SmolLM2-135M: rows of 576 weights, int4 groups of 96
    {"smollm2", 1536, 576}, {"smollm2", 49152, 576},
};

bool use_real_time() {
  const char* env = std::getenv("QLLM_BENCH_CPU_TIME");
  return env == nullptr || std::string(env) != "1";
}

int register_all() {
  const bool real = use_real_time();
  auto* bw = benchmark::RegisterBenchmark("membw/read", BM_MemoryReadBandwidth)->Unit(benchmark::kMillisecond);
  if (real) bw->UseRealTime();
  benchmark::RegisterBenchmark("pool/empty_parallel_for", BM_EmptyParallelFor)->UseRealTime();
#if defined(__x86_64__)
  for (Isa isa : {Isa::Avx512, Isa::Avx2}) {
    const std::string name = std::string("peak/int16_madd/") + isa_name(isa);
    benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { run_peak_madd(st, isa); })->UseRealTime();
  }
#endif
  for (QType q : {QType::QInt4, QType::QInt2})
    for (const auto& s : kShapes) {
      if (s.n_out > 100000) continue;
      const std::string name = std::string("prepare/") + std::string(qtype_name(q)) + "/" + s.model + "_" +
                               std::to_string(s.n_out) + "x" + std::to_string(s.n_in);
      benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { run_prepare(st, q, s.n_out, s.n_in); })
          ->Unit(benchmark::kMicrosecond);
    }
  const QType types[] = {QType::QInt8, QType::QInt4, QType::QInt2, QType::QFloat8,
                         QType::BF16,  QType::F16,   QType::F32};
  for (Isa isa : {Isa::Avx512, Isa::Avx2, Isa::Scalar})
    for (const char* kind : {"decode", "decodehot", "prefill128"})
      for (QType q : types)
        for (bool transposed : {false, true}) {
          if (transposed && !is_float_qtype(q)) continue;
          // decode: weights from DRAM, as in a whole model; decodehot: one copy of the weights,
          // from the caches where they fit, which shows the kernel's compute-bound rate.
          const int64_t n_tok = kind[0] == 'p' ? 128 : 1;
          const bool cold = std::string(kind) == "decode";
          for (const auto& s : kShapes) {
            if (!cold && s.n_out > 100000) continue;  // lm_head: decode only, from DRAM
            if (isa == Isa::Scalar && (!cold || s.n_out > 100000)) continue;  // too slow
            const std::string name = std::string(kind) + "/" + std::string(qtype_name(q)) +
                                     (transposed ? "T" : "") + "/" + s.model + "_" +
                                     std::to_string(s.n_out) + "x" + std::to_string(s.n_in) + "/" +
                                     isa_name(isa);
            auto* b = benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
              run_matmul(st, q, s.n_out, s.n_in, n_tok, transposed, isa, cold);
            });
            b->Unit(benchmark::kMicrosecond);
            if (real) b->UseRealTime();
          }
        }
  return 0;
}
const int kRegistered = register_all();

}  // namespace
}  // namespace qllm
