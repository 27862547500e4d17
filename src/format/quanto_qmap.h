// quanto_qmap.json: which modules of a checkpoint optimum-quanto quantized, and to what.
//
// Written by quanto's QuantizedModelForCausalLM.save_pretrained with json.dump(qmap, f, indent=4)
// (no trailing newline), one entry per quantized module, in the model's module order:
//   {
//       "model.layers.0.self_attn.q_proj": {
//           "weights": "qint4",
//           "activations": "none"
//       },
//       ...
//   }
// Values are qtype names (qint2, qint4, qint8, qfloat8_e4m3fn, qfloat8_e5m2, qfloat8_e4m3fnuz)
// or "none". The map carries no group size or shape: readers recompute them from the model.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "quant/qtype.h"

namespace qllm {

struct QmapEntry {
  std::string module;
  std::optional<QType> weights;       // nullopt: "none"
  std::string activations = "none";   // kept verbatim; qllm quantizes weights only
};

struct QuantoQmap {
  std::vector<QmapEntry> entries;  // file order

  const QmapEntry* find(std::string_view module) const;
  // module -> weight qtype, for load_linear().
  std::map<std::string, QType> weight_map() const;
};

// Parses and validates: a JSON object of objects with string "weights"/"activations"; weight
// qtypes qllm cannot run (e.g. qfloat8_e5m2) are rejected naming the module and listing the
// supported names. Throws FormatError.
QuantoQmap parse_quanto_qmap(const std::filesystem::path& path, std::string_view json);
QuantoQmap read_quanto_qmap(const std::filesystem::path& path);

// Exactly the bytes quanto writes (Python json.dump(indent=4)).
std::string quanto_qmap_json(const QuantoQmap& qmap);
// Writes atomically (temp file, then rename).
void write_quanto_qmap(const std::filesystem::path& path, const QuantoQmap& qmap);

}  // namespace qllm
