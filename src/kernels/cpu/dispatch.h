// Run-time choice of the CPU kernels: one table of kernels per instruction set.
//
// The ISA is chosen once, on first use: the best one that this binary contains and this CPU
// (and OS, via XGETBV) supports, unless QLLM_FORCE_ISA=scalar|avx2|avx512 names one. Forcing
// an ISA the CPU lacks, or one the binary was built without, is an error with its own message.
//   scalar  the reference kernels (kernels/cpu/ref)
//   avx2    AVX2 + FMA + F16C
//   avx512  AVX-512 F/BW/VL/DQ + VNNI (+ FMA, F16C); BF16 weights use AVX-512 BF16 where the
//           CPU has it too
//
// Activations of the int8/int4/int2 kernels. Each table has up to two kernels for these types:
//   rows       int8 activations (QuantizedActs, vpdpbusd / vpmaddubsw): for long prefills, which
//              are compute-bound; adds an activation-rounding error of up to absmax/254 of the
//              block (act8_block) per element (bounded in tests/kernels/test_matmul.cpp).
//   rows_fine  fine activations: for decode and short prompts, whose error should be that of
//              the weights, which is what weight-only formats such as optimum-quanto's
//              ("activations": "none") promise. The scalar kernels keep x in f32. The AVX2 and
//              AVX-512 ones round x to int16 per block (fine16_block) and take
//              vpmaddwd / vpdpwssd products: the added error is at most absmax/65534 per element
//              (2^-8 of int8's, below bf16's rounding of x), and a decode step is not bound by
//              widening weights to f32. Group sizes without an int16 block keep f32 x.
// matmul() picks rows_fine below kActQuantMinTokens tokens, and where a table has no int8
// kernel for the type (AVX2 int8: its int16 kernel is as fast). QLLM_ACT_QUANT=auto|never|always
// (read once) overrides the choice where both exist, to measure the int8-activation error on
// whole models.
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

// Zeros after the tokens in QuantizedActs' transposed arrays: a vector of 8 may start at any
// token.
inline constexpr int64_t kTokenPad = 8;

// Activations quantized to int8 once per matmul call, shared by all threads. Every token row
// is padded with zeros to `stride` (a multiple of 64 and of the block) so kernels read whole
// vectors.
//   x[t, i] ~= d[t, b] * q[t, i] for the block b = i / B, B = act8_block (d = absmax / 127 of
//   the block)
struct QuantizedActs {
  int64_t stride = 0;
  const int8_t* q = nullptr;          // [n_tok, stride]
  const float* lane_scale = nullptr;  // [n_tok, stride / 4]: d of the block holding i = 4*lane
  const float* offset = nullptr;      // [n_tok]: 128 * sum_b d[t, b] * sum_{i in b} q[t, i]
  const float* group_sum = nullptr;   // [n_tok, n_in / G]: exact sums of x over weight groups
  // With int8 q and affine weights, for kernels that take several tokens in one vector:
  // tokens contiguous, zero from n_tok to n_tok + kTokenPad (token_stride_t).
  const float* group_sum_t = nullptr;    // [n_in / G, token_stride_t]: group_sum transposed
  const float* block_scale_t = nullptr;  // [stride / B, token_stride_t]: d[t, b] transposed
  int64_t token_stride_t = 0;
  int64_t block8 = 0;                 // B: elements per int8 scale (act8_block)

  // int16 activations of the AVX2 and AVX-512 fine kernels (quantize_acts16); block16 == 0
  // when x stays f32. x[t, i] ~= d16[t, i / block16] * q16[t, i], d16 = absmax / 32767 of the
  // block.
  int64_t block16 = 0;            // fine16_block: 64, 128 or 256, or a group of G % 64 == 32
  int64_t stride16 = 0;           // n_in rounded up to block16; q16 is zero past n_in
  const int16_t* q16 = nullptr;   // [n_tok, stride16]
  const float* d16 = nullptr;     // [n_tok, stride16 / block16]
};

// The shift part of an affine (int4/int2) output is sum_g shift[o, g] * (sum of x over group g),
// which every affine kernel subtracts from its scaled dot products. This adds group g's term to
// sums[r][t] for the R rows from o and the T tokens from t0. Kernels call it as each group
// ends, so that a row's last step waits only on its horizontal sum: taken after the row instead
// (one masked FMA before the AVX2 sum), the term cost int4 decode 9-16% and prompts 14-27% on
// rows of 768 or 896 weights on Zen 1.
template <int R, int T>
inline void add_shift_terms(const QTensor& w, const QuantizedActs& a, int64_t gpr, int64_t o, int64_t t0, int64_t g,
                            float (&sums)[R][T], int64_t row_step = 1) {
  for (int t = 0; t < T; ++t) {
    const float xs = a.group_sum[(t0 + t) * gpr + g];
    for (int r = 0; r < R; ++r) sums[r][t] += w.shift[(o + r * row_step) * gpr + g] * xs;
  }
}

// Computes rows [o_begin, o_end) of y = W x for all tokens (as ref::matmul_rows). `acts` is
// filled when the table says the kernel uses quantized activations.
using RowsFn = void (*)(const QTensor& w, const float* x, const QuantizedActs& acts, int64_t n_tok,
                        float* y, int64_t o_begin, int64_t o_end);
// Quantizes n_tok rows of x [n_tok, n_in] per block of `block` elements (a multiple of 32 that
// divides stride) into q [n_tok, stride], lane_scale and offset.
using QuantizeActsFn = void (*)(const float* x, int64_t n_tok, int64_t n_in, int64_t block,
                                int64_t stride, int8_t* q, float* lane_scale, float* offset);
// Rounds n_tok rows of x [n_tok, n_in] to int16 per block of `block`: q [n_tok, stride],
// d [n_tok, stride / block] (QuantizedActs::q16, d16).
using QuantizeActs16Fn = void (*)(const float* x, int64_t n_tok, int64_t n_in, int64_t block,
                                  int64_t stride, int16_t* q, float* d);

struct KernelTable {
  Isa isa = Isa::Scalar;
  QuantizeActsFn quantize_acts = nullptr;
  // Types whose `rows` kernel takes int8 activations per act16_block(w) instead of per 32: it
  // sums a whole block of products in integers before scaling them (int4/int2 on AVX2 and
  // AVX-512). Weights whose act16_block(w) is 0 then have no int8-activation kernel.
  bool act8_in_act16_blocks[kNumQTypes] = {};
  RowsFn rows[kNumQTypes] = {};          // null (and rows_fine null): use the reference kernel
  bool uses_acts[kNumQTypes] = {};       // the kernels read QuantizedActs
  // Fine-activation kernels of the types that uses_acts (null for the others; may be the only
  // kernel of a type, as for AVX2 int8).
  // They read x (or q16 where quantize_acts16 is set and act16_block(w) > 0) and group_sum.
  RowsFn rows_fine[kNumQTypes] = {};
  QuantizeActs16Fn quantize_acts16 = nullptr;  // null: the fine kernels read f32 x
  // Types whose fine kernel also takes int16 activations with one block per weight group where
  // act16_block(w) is 0 but the group is a multiple of 32 (G % 64 == 32, e.g. 96 for rows of
  // 576 or 960): int4 on AVX2 and AVX-512. Elsewhere such groups keep f32 x.
  bool fine16_group_blocks[kNumQTypes] = {};
  // int4/int2 weights with an int16 block (act16_block > 0) are read in Layout::Interleaved16,
  // 16 rows per vector (prepare.h); others, and every int4/int2 weight without this, in
  // RowChunked.
  bool interleaved16_bits = false;
  // BF16 rows (not transposed), one token at a time, take x split into bf16 hi + lo for
  // vdpbf16ps, which adds at most 2^-16 |x| per element (matmul_bf16_avx512.cpp). Set where
  // the CPU has AVX-512 BF16.
  bool bf16_dot = false;
};

// Below this many tokens matmul() runs the fine-activation kernels: decode and short prompts
// stream every weight once per token or few, so they are bandwidth-bound and int8 activations
// would add error for no speed; weight-only formats promise weight-only error. Longer prefills
// are compute-bound and get int8 activations (vpdpbusd), with the error bounded as documented
// in tests/kernels/test_matmul.cpp.
inline constexpr int64_t kActQuantMinTokens = 32;

// Which activations the int8/int4/int2 kernels use.
enum class ActQuant : uint8_t {
  Auto,    // int8 when n_tok >= kActQuantMinTokens, else fine (f32 or int16)
  Never,   // always fine
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

// The layout `table`'s kernels read w in: QuantoPlanar (the reference kernel) where neither
// chunked layout can hold w's group size; for types other than int4/int2, w.layout.
Layout kernel_layout(const KernelTable& table, const QTensor& w);

// True when `table`'s kernel for w can run on w as it is (layout, group size).
bool kernel_accepts(const KernelTable& table, const QTensor& w);

// Elements per int8 activation scale of `table`'s int8-activation kernel for w: 32, or
// act16_block(w) (see act8_in_act16_blocks; 0: no block fits).
int64_t act8_block(const KernelTable& table, const QTensor& w);

// Elements per int16 activation scale for w's fine kernel: 256 for int8; for int4/int2 the
// largest of 128 and 64 that divides the group size (for a row of one group: its length padded
// to whole chunks), so no block straddles two groups; 0 for other group sizes (and types),
// whose fine kernels read f32 x.
// int8 takes 256: each block ends in a conversion and an FMA per register sum, which at 128
// were a sixth of the AVX2 prompt kernel's instructions (GPT-2's shapes: 70-80 -> 90-98 GOP/s
// at best on one Zen 3 core). Its added error, absmax/65534 of the block, stays far below the
// int8 weights' own.
int64_t act16_block(const QTensor& w);

// Elements per int16 activation scale of `table`'s fine kernel for w: act16_block(w), else the
// (padded) group size where the table's fine16_group_blocks takes it, else 0 (f32 x).
int64_t fine16_block(const KernelTable& table, const QTensor& w);

// Scalar activation quantizer, the spec of QuantizeActsFn: SIMD versions give the same q and
// lane_scale, and `offset` up to float rounding.
void quantize_acts_scalar(const float* x, int64_t n_tok, int64_t n_in, int64_t block, int64_t stride,
                          int8_t* q, float* lane_scale, float* offset);

// The spec of QuantizeActs16Fn: q = round-to-nearest-even(x * (32767 / absmax)), d = absmax /
// 32767 per block; SIMD versions give the same q and d.
void quantize_acts16_scalar(const float* x, int64_t n_tok, int64_t n_in, int64_t block,
                            int64_t stride, int16_t* q, float* d);

namespace x86 {
void fill_avx2(KernelTable* t);
void fill_avx2_fine(KernelTable* t);  // the int16-activation kernels (matmul_fine_avx2.cpp)
void fill_avx2_act8(KernelTable* t);  // int4/int2 with int8 activations (matmul_act8_avx2.cpp)
void fill_avx512(KernelTable* t);
void fill_avx512_fine(KernelTable* t);  // the int16-activation kernels (matmul_fine_avx512.cpp)
void fill_avx512_bf16(KernelTable* t);  // BF16 rows with vdpbf16ps (matmul_bf16_avx512.cpp)
}  // namespace x86

}  // namespace qllm
