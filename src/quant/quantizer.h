// Weight quantizers that reproduce optimum-quanto bit for bit.
//
// quanto quantizes with torch ops in the weight's own dtype, so each intermediate result is
// rounded to that dtype (BF16/F16) before the next op. We do the same with round_to(), in the
// same order of operations (QUANTO_FORMAT.md, "Arithmetic happens in the model's dtype"):
//   qint8   (AbsmaxOptimizer)  scale[o] = dt(max_i |W[o,i]| / 127)
//                              q = clamp(round(dt(W / scale)), -128, 127)
//   qfloat8 (AbsmaxOptimizer)  scale[o] = dt(max_i |W[o,i]| / 448)
//                              q = e4m3fn(clamp(dt(W / scale), -448, 448))
//   qint4/2 (MaxOptimizer)     per group: scale = dt(dt(max - min) / (2^bits - 1)), shift = dt(-min)
//                              q = clamp(round(dt(dt(W + shift) / scale)), 0, 2^bits - 1)
// round() is round-half-to-even (torch.round). min and max are the plain group extremes (quanto
// does not widen the range to include zero).
//
// Zero scales (an all-zero row or a constant group): torch computes 0/0 = NaN and its integer
// cast of NaN gives 0, so q = 0, which dequantizes exactly (to 0, or to the constant -shift).
// We produce q = 0 explicitly. For qfloat8 quanto would store NaN (0x7f) and dequantize the
// row to NaN; we store 0 instead, which is the only useful value and the one a loader expects.
//
// quanto's CPU/CUDA runtime keeps bf16 qint4 weights with group size 128 in tinygemm's format,
// which stores `min + 8*scale` instead of the shift; converting back on save loses bits. With
// QuantSpec::tinygemm_shift the stored shift goes through the same round trip, so our files
// equal quanto's saved files (see tinygemm_shift_round_trip()).
//
// The work is split in two passes so a writer can stream: compute_quant_params() (scales and
// shifts, small) and quantize_weight() (the packed data, plus error statistics).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "format/dtype.h"
#include "quant/qtype.h"
#include "util/thread_pool.h"

namespace qllm {

// How scales (and shifts) are chosen. Absmax is the only symmetric one (qint8, qfloat8);
// Max, Search and Hqq are affine (qint4, qint2).
enum class WeightOptimizer : uint8_t {
  Absmax,  // quanto AbsmaxOptimizer
  Max,     // quanto MaxOptimizer: the group's [min, max]
  Search,  // ours: least-squares refit over a grid of scales, never worse than Max per group
  Hqq,     // quanto HqqOptimizer, applied per group instead of per tensor
};
std::optional<WeightOptimizer> optimizer_from_name(std::string_view name);
std::string_view optimizer_name(WeightOptimizer o);
WeightOptimizer default_optimizer(QType q);
bool optimizer_fits(WeightOptimizer o, QType q);

// quanto's group size for qint2/qint4 (nn/qmodule.py): start at 128; if n_in > 128, step down
// by 32 while it does not divide n_in and is > 32. nullopt means per output row, which is the
// same layout as group_size == n_in.
std::optional<int64_t> quanto_group_size(int64_t n_in);

// A weight matrix W [n_out, n_in] as stored in the checkpoint (row-major, or [n_in, n_out] when
// `transposed`, as GPT-2's Conv1D), read row pieces at a time.
struct WeightView {
  const std::byte* data = nullptr;
  DType dtype = DType::F32;  // F32, F16 or BF16
  int64_t n_out = 0, n_in = 0;
  bool transposed = false;

  // Widens W[o, i0 .. i0+n) to f32.
  void load(int64_t o, int64_t i0, int64_t n, float* out) const;
};

struct QuantSpec {
  QType qtype = QType::QInt8;
  DType model_dtype = DType::F32;  // dtype of the scales and of all intermediate arithmetic
  int64_t group_size = 0;          // QInt4/QInt2: weights per group; must divide n_in
  WeightOptimizer optimizer = WeightOptimizer::Absmax;
  bool tinygemm_shift = false;     // see the file comment
};

// Number of scale rows: n_out (8-bit) or n_out * n_in / group_size (affine).
int64_t n_scale_rows(const QuantSpec& s, int64_t n_out, int64_t n_in);
// Bytes of quantized data in QTensor's layout (qtensor.h).
uint64_t quantized_bytes(const QuantSpec& s, int64_t n_out, int64_t n_in);
// The on-disk shape of the data tensor: [n_out, n_in] or [ceil(n_groups / (8/bits)), group].
std::array<int64_t, 2> quantized_shape(const QuantSpec& s, int64_t n_out, int64_t n_in);

// Error of the dequantized weights (scale*q or scale*q - shift, in f32) against W.
struct QuantError {
  double sum_sq_w = 0, sum_sq_err = 0;
  double max_abs = 0;
  uint64_t n = 0;
  void merge(const QuantError& o);
  double rmse() const;
  double sqnr_db() const;  // 10 log10(sum W^2 / sum err^2); +inf when exact
};

// ---- per-value and per-group building blocks (the executable spec) ----
int8_t quantize_qint8_value(float w, float scale, DType dt);
uint8_t quantize_qfloat8_value(float w, float scale, DType dt);
uint8_t quantize_affine_value(float w, float scale, float shift, int bits, DType dt);
// scale = dt(max|w| / qmax) for qmax = 127 or 448.
float absmax_scale(std::span<const float> w, float qmax, DType dt);
// MaxOptimizer on one group.
void max_params(std::span<const float> w, int bits, DType dt, float* scale, float* shift);
// Least-squares search on one group (never worse than max_params in squared error).
void search_params(std::span<const float> w, int bits, DType dt, float* scale, float* shift);
// HQQ (quanto HqqOptimizer defaults) on one group.
void hqq_params(std::span<const float> w, int bits, DType dt, float* scale, float* shift);
// tinygemm's lossy storage: shift' = dt(h - dt(-shift + h)) with h = dt(2^(bits-1) * scale).
float tinygemm_shift_round_trip(float scale, float shift, int bits, DType dt);

// ---- whole matrices ----
// Fills scale (and, for affine qtypes, shift) with n_scale_rows() values each. Returns the flat
// index o*n_in+i of the first NaN or Inf weight, if any (the outputs are then meaningless).
std::optional<int64_t> compute_quant_params(const WeightView& w, const QuantSpec& s,
                                            std::span<float> scale, std::span<float> shift,
                                            ThreadPool& pool);
// Writes the quantized data (quantized_bytes() bytes) and returns its error. With `baseline`,
// also measures the error that quanto's default optimizer would have given.
QuantError quantize_weight(const WeightView& w, const QuantSpec& s, std::span<const float> scale,
                           std::span<const float> shift, std::span<std::byte> out,
                           ThreadPool& pool, QuantError* baseline = nullptr);

}  // namespace qllm
