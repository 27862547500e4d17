// GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
// Transformers", 2022): quantize a Linear's weights one input column at a time and push each
// column's rounding error onto the columns not yet quantized, weighted by the inverse Hessian of
// the layer's inputs, so that the *outputs* W X stay close rather than the weights.
//
// Inputs: W [n_out, n_in] (y = W x) and H = sum over calibration tokens of x x^T, [n_in, n_in]
// (the 2/n factor of the paper's H = 2 X X^T cancels: only the damping depends on the scale,
// and it is relative to mean(diag H)).
// Output: the integer codes and the group-wise scale and shift of quanto's qint4/qint2 layout
// (W ~ scale[g] * q - shift[g], group g = o * (n_in/G) + i/G), which quantizer.h's writer packs
// and saves, so the result is an ordinary quanto checkpoint.
//
// Per row o the algorithm is (rows are independent, so they run in parallel):
//   U = upper Cholesky factor of (H + damp*mean(diag H)*I)^-1
//   for i in column order:
//     at the first column of a group: (scale, shift) = quanto MaxOptimizer of the group's
//       *current* (already error-updated) weights, in the model dtype's rounding;
//     q_i = quanto's affine rounding of w_i;  e = (w_i - (scale*q_i - shift)) / U[i][i]
//     w_j -= e * U[i][j]  for all later columns j
// With act_order, columns go in order of decreasing diag(H) (the most active inputs first);
// groups must stay contiguous in the original order for quanto's layout, so their parameters
// are then fixed up front from the original weights ("static groups").
// Inputs that were never active (H[i][i] == 0) get H[i][i] = 1 so the factorisation exists;
// their weights are rounded plainly.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "format/dtype.h"
#include "util/thread_pool.h"

namespace qllm {

struct GptqOptions {
  int bits = 4;                     // 4 (qint4) or 2 (qint2)
  int64_t group_size = 0;           // weights per group along n_in; must divide n_in
  DType model_dtype = DType::F32;   // rounding of scales, shifts and quantization arithmetic
  double damp = 0.01;               // fraction of mean(diag H) added to the diagonal
  bool act_order = false;
};

struct GptqResult {
  std::vector<uint8_t> q;            // [n_out, n_in] codes in [0, 2^bits)
  std::vector<float> scale, shift;   // [n_out * n_in / group_size]
  double damp_used = 0;              // the damping fraction that made H positive definite
};

// Upper Cholesky factor U of the inverse of the damped H (H^-1 = U^T U), row-major [n, n].
// Doubles the damping (starting at `damp`) until the factorisation succeeds, at most 8 times;
// returns false if it never does. `damp_used` receives the fraction that worked.
bool gptq_inverse_factor(std::span<const double> h, int64_t n, double damp,
                         std::vector<double>* u, double* damp_used);

// Quantizes W [n_out, n_in] (f32, row-major) with the Hessian H [n_in, n_in] (f64, symmetric).
// With `grid`, its scale and shift are used as they are (static groups) instead of being
// computed along the way. Falls back to plain rounding on the grid (or quanto's MaxOptimizer)
// if H cannot be factorised even with extra damping.
GptqResult gptq_quantize(std::span<const float> w, int64_t n_out, int64_t n_in,
                         std::span<const double> h, const GptqOptions& opt, ThreadPool& pool,
                         const GptqResult* grid = nullptr);

// Refits each row's group scales and shifts to the codes of `r` by least squares in the
// Hessian's metric (minimising (w - w_q)^T H (w - w_q) per row, codes fixed), rounded to the
// model dtype. Rows whose system is singular or gives a non-positive scale keep theirs.
GptqResult refit_grid(std::span<const float> w, int64_t n_out, int64_t n_in,
                      std::span<const double> h, const GptqResult& r, const GptqOptions& opt,
                      ThreadPool& pool);

// (w_o - w_q,o)^T H (w_o - w_q,o) for each row o: the squared output error the row adds over
// the calibration tokens.
std::vector<double> row_output_error(std::span<const float> w, int64_t n_out, int64_t n_in,
                                     std::span<const double> h, const GptqResult& r,
                                     int64_t group_size, ThreadPool& pool);

// GPTQ with grid refinement, the calibrated quantizer: candidates are GPTQ on `start_grid`
// (e.g. quanto's MaxOptimizer or the search optimizer's parameters; or the dynamic Max grid
// when null), then, `rounds` times, GPTQ again on the grid refitted to the previous codes
// (refit_grid). Each row keeps the candidate with the lowest output error, so the result is
// never worse than plain GPTQ on the calibration data.
GptqResult gptq_refined(std::span<const float> w, int64_t n_out, int64_t n_in,
                        std::span<const double> h, const GptqOptions& opt, ThreadPool& pool,
                        const GptqResult* start_grid, int rounds = 2);

// Plain rounding with quanto's MaxOptimizer parameters, the baseline GPTQ is measured against.
GptqResult max_round(std::span<const float> w, int64_t n_out, int64_t n_in, const GptqOptions& opt,
                     ThreadPool& pool);

// Dequantized weights scale*q - shift in f32, as the runtime computes them. [n_out, n_in].
std::vector<float> gptq_dequantize(const GptqResult& r, int64_t n_out, int64_t n_in,
                                   int64_t group_size);

}  // namespace qllm
