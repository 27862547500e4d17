// Run-time choice of the CPU kernels: one table of kernels per instruction set.
//
// The ISA is chosen once, on first use: the best one that this binary contains and this CPU
// (and OS, via XGETBV) supports, unless QLLM_FORCE_ISA=scalar|avx2|avx512 names one. Forcing
// an ISA the CPU lacks, or one the binary was built without, is an error with its own message.
//   scalar  the reference kernels (kernels/cpu/ref)
//   avx2    AVX2 + FMA + F16C
//   avx512  AVX-512 F/BW/VL/DQ + VNNI (+ FMA, F16C)
//
// Activations of the int8/int4/int2 kernels. Each table has two kernels for these types:
//   rows      int8 activations (QuantizedActs, vpdpbusd / vpmaddubsw): for long prefills, which
//             are compute-bound; adds an activation-rounding error (bounded in
//             tests/kernels/test_matmul.cpp).
//   rows_f32  f32 activations, weights dequantized in registers: for decode and short prompts,
//             which are memory-bandwidth-bound, so the int8 trick buys no speed there; error is
//             that of the weights alone, which is what weight-only formats such as
//             optimum-quanto's ("activations": "none") promise.
// matmul() picks rows_f32 below kActQuantMinTokens tokens. QLLM_ACT_QUANT=auto|never|always
// (read once) overrides it, to measure the int8-activation error on whole models.
#pragma once

#include <cstdint>

#include "quant/qtensor.h"

namespace qllm {

enum class Isa : uint8_t { Scalar, Avx2, Avx512 };
inline constexpr Isa kAllIsas[] = {Isa::Scalar, Isa::Avx2, Isa::Avx512};
inline constexpr int kNumQTypes = 7;

const char* isa_name(Isa isa);
bool isa_compiled(Isa isa);   // this binary contains kernels for it
bool isa_supported(Isa isa);  // this CPU and OS can run them

// The ISA in use (detected, or QLLM_FORCE_ISA). Throws FormatError for a bad QLLM_FORCE_ISA.
Isa active_isa_kind();
// Its name, for reports: "scalar", "avx2" or "avx512".
const char* active_isa();

// Activations quantized to int8 once per matmul call, shared by all threads. Every token row
// is padded with zeros to `stride` (a multiple of 64) so kernels read whole vectors.
//   x[t, i] ~= d[t, b] * q[t, i] for the block b = i / 32 (d = absmax / 127 of the block)
struct QuantizedActs {
  int64_t stride = 0;
  const int8_t* q = nullptr;          // [n_tok, stride]
  const float* lane_scale = nullptr;  // [n_tok, stride / 4]: d of the block holding i = 4*lane
  const float* offset = nullptr;      // [n_tok]: 128 * sum_b d[t, b] * sum_{i in b} q[t, i]
  const float* group_sum = nullptr;   // [n_tok, n_in / G]: exact sums of x over weight groups
};

// Computes rows [o_begin, o_end) of y = W x for all tokens (as ref::matmul_rows). `acts` is
// filled when the table says the kernel uses quantized activations.
using RowsFn = void (*)(const QTensor& w, const float* x, const QuantizedActs& acts, int64_t n_tok,
                        float* y, int64_t o_begin, int64_t o_end);
// Quantizes n_tok rows of x [n_tok, n_in] into q [n_tok, stride], lane_scale and offset.
using QuantizeActsFn = void (*)(const float* x, int64_t n_tok, int64_t n_in, int64_t stride,
                                int8_t* q, float* lane_scale, float* offset);

struct KernelTable {
  Isa isa = Isa::Scalar;
  QuantizeActsFn quantize_acts = nullptr;
  RowsFn rows[kNumQTypes] = {};          // null: use the reference kernel
  bool uses_acts[kNumQTypes] = {};       // the kernel reads QuantizedActs
  // f32-activation kernels of the types whose `rows` kernel uses_acts (null for the others).
  // They read x, and only group_sum of QuantizedActs (int4/int2).
  RowsFn rows_f32[kNumQTypes] = {};
};

// Below this many tokens matmul() runs the f32-activation kernels: decode and short prompts
// stream every weight once per token or few, so they are bandwidth-bound and int8 activations
// would add error for no speed; weight-only formats promise weight-only error. Longer prefills
// are compute-bound and get int8 activations (vpdpbusd), with the error bounded as documented
// in tests/kernels/test_matmul.cpp.
inline constexpr int64_t kActQuantMinTokens = 32;

// Which activations the int8/int4/int2 kernels use.
enum class ActQuant : uint8_t {
  Auto,    // int8 when n_tok >= kActQuantMinTokens, else f32
  Never,   // always f32
  Always,  // always int8
};
// QLLM_ACT_QUANT=auto|never|always (unset or empty: auto), read once. Throws FormatError for
// any other value.
ActQuant act_quant_policy();
// True when `table`'s kernel for w, under `policy` and n_tok, is the int8-activation one.
bool uses_quantized_acts(const KernelTable& table, const QTensor& w, int64_t n_tok, ActQuant policy);

// The table of `isa`, or null if not compiled in or not supported by this CPU.
const KernelTable* kernel_table(Isa isa);
// The table of the active ISA.
const KernelTable& active_kernels();

// True when `table`'s kernel for w can run on w as it is (layout, group size).
bool kernel_accepts(const KernelTable& table, const QTensor& w);

// Scalar activation quantizer, the spec of QuantizeActsFn: SIMD versions give the same q and
// lane_scale, and `offset` up to float rounding.
void quantize_acts_scalar(const float* x, int64_t n_tok, int64_t n_in, int64_t stride, int8_t* q,
                          float* lane_scale, float* offset);

namespace x86 {
void fill_avx2(KernelTable* t);
void fill_avx512(KernelTable* t);
}  // namespace x86

}  // namespace qllm
