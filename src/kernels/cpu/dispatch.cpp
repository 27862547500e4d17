#include "kernels/cpu/dispatch.h"

#include <cmath>
#include <cstdlib>
#include <string_view>

#include "kernels/cpu/prepare.h"
#include "util/error.h"

#if defined(__x86_64__)
#include <cpuid.h>
#define QLLM_X86 1
#else
#define QLLM_X86 0
#endif

namespace qllm {
namespace {

#if QLLM_X86
uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
#endif

struct CpuFeatures {
  bool avx2 = false, avx512 = false, avx512_bf16 = false;
};

CpuFeatures detect() {
  CpuFeatures f;
#if QLLM_X86
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12),
             f16c = c & (1u << 29);
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;            // XMM and YMM state
  const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;       // plus opmask and ZMM state
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  const bool avx2 = b & (1u << 5), bmi2 = b & (1u << 8);
  const bool f512 = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
  const bool vnni = c & (1u << 11);
  f.avx2 = os_avx && avx2 && fma && f16c && bmi2;
  f.avx512 = f.avx2 && os_avx512 && f512 && dq && bw && vl && vnni;
  if (f.avx512 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx512_bf16 = a & (1u << 5);
#endif
  return f;
}

const CpuFeatures& features() {
  static const CpuFeatures f = detect();
  return f;
}

KernelTable make_table(Isa isa) {
  KernelTable t;
  t.isa = isa;
  t.quantize_acts = quantize_acts_scalar;
#if QLLM_X86
  if (isa == Isa::Avx2) x86::fill_avx2(&t);
  if (isa == Isa::Avx512) x86::fill_avx512(&t);
  if (isa == Isa::Avx512 && features().avx512_bf16) x86::fill_avx512_bf16(&t);
#endif
  return t;
}

Isa choose_isa() {
  const char* env = std::getenv("QLLM_FORCE_ISA");
  if (env == nullptr || *env == '\0') {
    for (Isa isa : {Isa::Avx512, Isa::Avx2})
      if (isa_compiled(isa) && isa_supported(isa)) return isa;
    return Isa::Scalar;
  }
  const std::string_view s = env;
  for (Isa isa : kAllIsas) {
    if (s != isa_name(isa)) continue;
    if (!isa_compiled(isa)) fail_usage("QLLM_FORCE_ISA={}: this binary was built without {} kernels", s, s);
    if (!isa_supported(isa)) fail_usage("QLLM_FORCE_ISA={}: this CPU lacks {}", s, s);
    return isa;
  }
  fail_usage("QLLM_FORCE_ISA={}: unknown ISA (expected scalar, avx2 or avx512)", s);
}

ActQuant choose_act_quant() {
  const char* env = std::getenv("QLLM_ACT_QUANT");
  if (env == nullptr || *env == '\0') return ActQuant::Auto;
  const std::string_view s = env;
  if (s == "auto") return ActQuant::Auto;
  if (s == "never") return ActQuant::Never;
  if (s == "always") return ActQuant::Always;
  fail_usage("QLLM_ACT_QUANT={}: unknown value (expected auto, never or always)", s);
}

}  // namespace

ActQuant act_quant_policy() {
  static const ActQuant policy = choose_act_quant();
  return policy;
}

bool uses_quantized_acts(const KernelTable& table, const QTensor& w, int64_t n_tok, ActQuant policy) {
  const int q = static_cast<int>(w.qtype);
  if (!table.uses_acts[q]) return false;
  if (table.rows[q] == nullptr || act8_block(table, w) == 0) return false;
  if (table.rows_fine[q] == nullptr) return true;
  switch (policy) {
    case ActQuant::Never: return false;
    case ActQuant::Always: return true;
    case ActQuant::Auto: break;
  }
  return n_tok >= kActQuantMinTokens;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

bool isa_compiled(Isa isa) { return isa == Isa::Scalar || QLLM_X86; }

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Avx2: return features().avx2;
    case Isa::Avx512: return features().avx512;
  }
  return false;
}

Isa active_isa_kind() {
  static const Isa isa = choose_isa();
  return isa;
}

const char* active_isa() { return isa_name(active_isa_kind()); }

const KernelTable* kernel_table(Isa isa) {
  // Only tables this CPU can run are filled: the fill functions are compiled with their ISA's
  // flags, and the compiler may use that ISA's instructions in them too (zmm stores of the table).
  auto make_if_supported = [](Isa i) {
    return isa_compiled(i) && isa_supported(i) ? make_table(i) : KernelTable{};
  };
  static const KernelTable tables[] = {make_if_supported(Isa::Scalar), make_if_supported(Isa::Avx2),
                                       make_if_supported(Isa::Avx512)};
  if (!isa_compiled(isa) || !isa_supported(isa)) return nullptr;
  return &tables[static_cast<int>(isa)];
}

const KernelTable& active_kernels() {
  static const KernelTable* t = kernel_table(active_isa_kind());
  return *t;
}

bool kernel_accepts(const KernelTable& table, const QTensor& w) {
  const int q = static_cast<int>(w.qtype);
  if (table.rows[q] == nullptr && table.rows_fine[q] == nullptr) return false;
  if (w.qtype == QType::QInt4 || w.qtype == QType::QInt2)
    return is_chunked(w.layout) && w.layout == kernel_layout(table, w);
  return true;
}

Layout kernel_layout(const KernelTable& table, const QTensor& w) {
  if (w.qtype != QType::QInt4 && w.qtype != QType::QInt2) return w.layout;
  if (!can_chunk(w)) return Layout::QuantoPlanar;
  return table.interleaved16_bits && act16_block(w) > 0 ? Layout::Interleaved16 : Layout::RowChunked;
}

int64_t act8_block(const KernelTable& table, const QTensor& w) {
  return table.act8_in_act16_blocks[static_cast<int>(w.qtype)] ? act16_block(w) : 32;
}

void quantize_acts_scalar(const float* x, int64_t n_tok, int64_t n_in, int64_t block, int64_t stride,
                          int8_t* q, float* lane_scale, float* offset) {
  for (int64_t t = 0; t < n_tok; ++t) {
    const float* xt = x + t * n_in;
    int8_t* qt = q + t * stride;
    float* lt = lane_scale + t * (stride / 4);
    double off = 0.0;
    for (int64_t b = 0; b < stride; b += block) {
      const int64_t e = b + block < n_in ? b + block : n_in;
      float amax = 0.0f;
      for (int64_t i = b; i < e; ++i) amax = std::fmax(amax, std::fabs(xt[i]));
      const float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
      int sum = 0;
      for (int64_t i = b; i < b + block; ++i) {
        const int v = i < e ? static_cast<int>(std::nearbyint(xt[i] * id)) : 0;
        qt[i] = static_cast<int8_t>(v);
        sum += v;
      }
      for (int64_t l = b / 4; l < (b + block) / 4; ++l) lt[l] = d;
      off += static_cast<double>(d) * sum;
    }
    offset[t] = static_cast<float>(128.0 * off);
  }
}

int64_t act16_block(const QTensor& w) {
  if (w.qtype == QType::QInt8) return 256;
  if (w.qtype != QType::QInt4 && w.qtype != QType::QInt2) return 0;
  // A row of one group (G == n_in, quanto's per-row grouping) is padded to whole chunks
  // (prepare.h), so any block dividing the padded length stays inside the group.
  const int64_t g = w.group_size == w.n_in ? chunk_geometry(w).group_padded : w.group_size;
  if (g % 128 == 0) return 128;
  if (g % 64 == 0) return 64;
  return 0;
}

int64_t fine16_block(const KernelTable& table, const QTensor& w) {
  if (const int64_t b = act16_block(w); b > 0) return b;
  if (!table.fine16_group_blocks[static_cast<int>(w.qtype)] || !can_chunk(w)) return 0;
  // int32 sums of a block stay exact up to 8192 elements (matmul_fine_avx2.cpp).
  const int64_t g = chunk_geometry(w).group_padded;
  return g % 32 == 0 && g <= 8192 ? g : 0;
}

void quantize_acts16_scalar(const float* x, int64_t n_tok, int64_t n_in, int64_t block,
                            int64_t stride, int16_t* q, float* d) {
  for (int64_t t = 0; t < n_tok; ++t) {
    const float* xt = x + t * n_in;
    for (int64_t b = 0; b < stride; b += block) {
      const int64_t e = b + block < n_in ? b + block : n_in;
      float amax = 0.0f;
      for (int64_t i = b; i < e; ++i) amax = std::fmax(amax, std::fabs(xt[i]));
      const float id = amax > 0.0f ? 32767.0f / amax : 0.0f;
      for (int64_t i = b; i < b + block; ++i)
        q[t * stride + i] = static_cast<int16_t>(i < e ? std::nearbyint(xt[i] * id) : 0.0f);
      d[t * (stride / block) + b / block] = amax / 32767.0f;
    }
  }
}

}  // namespace qllm
