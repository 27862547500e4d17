// Calibration pass for GPTQ: run the float model over a text and sum, for every Linear, the
// outer products of its input rows, H = sum_t x_t x_t^T (quant/calibrate.h).
//
// The text is tokenized whole and cut into windows of ctx tokens (BOS first where the tokenizer
// adds one, as the chunks perplexity method does), up to max_tokens tokens in all. Modules that
// read the same activations (q/k/v, gate/up) share one H.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>

#include "quant/calibrate.h"
#include "runtime/model.h"

namespace qllm {

struct CalibrationOptions {
  int64_t ctx = 0;             // window length; 0: min(512, the model's n_ctx)
  int64_t max_tokens = 16384;  // calibration tokens in all
};

// Throws FormatError for an unreadable or empty text, or one shorter than 2 tokens.
std::shared_ptr<const HessianMap> collect_hessians(
    const Model& model, const std::filesystem::path& text, const CalibrationOptions& opts,
    const std::function<void(int64_t done, int64_t total)>& progress = {});

// Loads the float model in `model_dir`, collects its Hessians from `text` and returns the GPTQ
// hook for quantize_model(). Modules without calibration data are listed in *missing.
CalibrateFn gptq_calibrator(const std::filesystem::path& model_dir,
                            const std::filesystem::path& text, const CalibrationOptions& copts,
                            GptqCalibration gopts,
                            std::shared_ptr<std::vector<std::string>> missing = nullptr,
                            const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace qllm
