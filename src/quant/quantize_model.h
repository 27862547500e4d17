// Quantizing a whole Hugging Face model directory into optimum-quanto's format.
//
// The output is what QuantizedModelForCausalLM.quantize(model, weights=..., exclude=...) +
// save_pretrained writes: model.safetensors (sharded past a size limit), quanto_qmap.json,
// config.json, generation_config.json, plus the tokenizer files. Per quantized module P:
// P.weight._data / P.weight._data._data, P.weight._scale, P.weight._shift (affine), P.bias,
// and the scalar buffers P.input_scale / P.output_scale (1.0, in the weight's dtype), with
// quanto's key names, dtypes and shapes. Everything else is copied bit for bit.
//
// Where we go beyond quanto (documented, opt-in or unavoidable):
//   - GPT-2's Conv1D layers are quantized too (quanto only replaces nn.Linear and silently leaves
//     them float); they are stored in the Linear [n_out, n_in] convention. optimum-quanto cannot
//     load those modules.
//   - --quantize-embeddings quantizes the token embedding like a Linear; optimum-quanto cannot
//     load that part either.
//   - --group-size other than quanto's rule, and the search optimizer, produce files quanto
//     loads only if the group size matches its rule (it recomputes it).
// When the lm_head or the embedding of a tied model is quantized, config.json gets
// "tie_word_embeddings": false, as quanto does; no other byte of it changes.
//
// Streaming: the input is mmapped; pass 1 computes every scale and shift (small) and checks for
// NaN/Inf before anything is written; pass 2 quantizes each tensor inside the writer's fill(), so
// peak memory is about one tensor. The output is built in a temporary sibling directory and
// renamed into place only when complete.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "format/dtype.h"
#include "quant/calibrate.h"
#include "quant/quantizer.h"

namespace qllm {

// transformers 5's save_pretrained default max_shard_size, "50GB".
inline constexpr uint64_t kDefaultMaxShardBytes = 50'000'000'000ull;

struct QuantizeModelOptions {
  QType qtype = QType::QInt8;
  std::optional<int64_t> group_size;          // affine only; default quanto's rule
  std::optional<WeightOptimizer> optimizer;   // default: absmax (8-bit) or max
  std::vector<std::string> include, exclude;  // fnmatch patterns on module names
  bool quantize_embeddings = false;
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;
  bool force = false;  // replace an existing output directory
  // Progress of a stage ("analyze", "write") in bytes of input weights.
  std::function<void(std::string_view stage, uint64_t done, uint64_t total)> progress;
  // Calibrated int4/int2 (GPTQ, quant/calibrate.h): may replace each module's scale/shift and
  // codes after the optimizer ran. `calibration` names it in the report.
  CalibrateFn calibrate;
  std::string calibration;
};

struct LayerReport {
  std::string module;
  QType qtype;
  DType dtype;             // the weight's (model) dtype
  int64_t n_out = 0, n_in = 0;
  int64_t group_size = 0;  // affine only
  bool quanto_loadable = true;
  QuantError error;
  std::optional<QuantError> baseline;  // quanto's default optimizer, when another one ran
};

struct QuantizeReport {
  std::vector<LayerReport> layers;
  std::vector<std::string> warnings;
  WeightOptimizer optimizer = WeightOptimizer::Absmax;
  // Bytes of all parameters and persistent buffers (what HF's get_memory_footprint counts for
  // the stored tensors; tied weights once).
  uint64_t footprint_before = 0, footprint_after = 0;
  uint64_t file_bytes_before = 0, file_bytes_after = 0;  // weight files, index included
  std::vector<std::filesystem::path> files;               // names written in the output dir
  QuantError total;                                        // over all quantized weights
  std::string calibration;                                 // e.g. "gptq"; empty if none
};

// Throws FormatError for bad input (no model, already quantized, NaN/Inf weights, a group size
// that does not divide a layer, an output directory that exists without `force` or overlaps
// the input).
QuantizeReport quantize_model(const std::filesystem::path& in_dir,
                              const std::filesystem::path& out_dir,
                              const QuantizeModelOptions& opts);

// Sets a top-level boolean key of a JSON object text, changing as few bytes as possible (the
// value in place, or one line appended before the closing brace). Exposed for tests.
std::string set_json_bool_minimal(const std::string& json, const std::string& key, bool value);

}  // namespace qllm
