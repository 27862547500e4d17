// Calibrated int4/int2 quantization: GPTQ (gptq.h) plugged into the model quantizer.
//
// A calibration pass (runtime/calibration.h) runs the float model on a text and sums, for every
// Linear, the outer products of its inputs: H = sum_t x_t x_t^T. Modules fed the same input
// (q/k/v, gate/up) share one H. quantize_model() then asks a CalibrateFn for each int4/int2
// module: given the weight and quanto's MaxOptimizer scale/shift, it may replace them and hand
// back the integer codes, which the writer packs in quanto's planar layout. The file is an
// ordinary optimum-quanto checkpoint; only the choice of codes and group parameters differs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "quant/gptq.h"
#include "quant/quantizer.h"

namespace qllm {

struct Hessian {
  int64_t n_in = 0;
  int64_t n_tok = 0;       // calibration tokens summed
  std::vector<double> h;   // [n_in, n_in], symmetric
};
// Module name (as in the checkpoint, e.g. "model.layers.0.mlp.down_proj") -> its inputs' H.
using HessianMap = std::map<std::string, std::shared_ptr<const Hessian>>;

// Called once per affine module in the quantizer's first pass. `scale`/`shift` hold the
// configured optimizer's parameters (n_out * n_in / group_size each); the function may overwrite
// them and fill `codes` with n_out * n_in values < 2^bits in W's [n_out, n_in] order. Leaving
// `codes` empty keeps the optimizer's result.
using CalibrateFn = std::function<void(const std::string& module, const WeightView& w,
                                       const QuantSpec& spec, std::span<float> scale,
                                       std::span<float> shift, std::vector<uint8_t>& codes)>;

struct GptqCalibration {
  double damp = 0.01;
  bool act_order = false;
  int refine_rounds = 2;        // gptq_refined(): grid refits after the first GPTQ pass
  bool start_from_optimizer = true;  // first grid: the optimizer's scale/shift (else Max, dynamic)
};

// A CalibrateFn running GPTQ with the module's H. Modules without an H keep the optimizer's
// result; their names are appended to *missing (if given) when the function runs.
CalibrateFn make_gptq_calibrator(std::shared_ptr<const HessianMap> hessians,
                                 GptqCalibration opts,
                                 std::shared_ptr<std::vector<std::string>> missing = nullptr);

// Packs calibrated codes into `out` (quantized_bytes(spec) bytes, quanto's planar layout) and
// returns the weight error of scale*q - shift against W. With `baseline`, also the error plain
// MaxOptimizer rounding would have had.
QuantError write_calibrated_codes(const WeightView& w, const QuantSpec& spec,
                                  std::span<const uint8_t> codes, std::span<const float> scale,
                                  std::span<const float> shift, std::span<std::byte> out,
                                  QuantError* baseline = nullptr);

}  // namespace qllm
