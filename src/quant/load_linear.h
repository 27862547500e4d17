// Building Linear layers from a checkpoint: float weights, or optimum-quanto's quantized keys.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "format/safetensors.h"
#include "quant/qtensor.h"

namespace qllm {

struct LinearSpec {
  std::string prefix;     // module name, e.g. "model.layers.0.self_attn.q_proj"
  int64_t n_out = 0, n_in = 0;
  bool conv1d = false;    // GPT-2 Conv1D: float weight stored [n_in, n_out]
  bool has_bias = false;
};

// Loads `spec.prefix`.weight (float) or its quanto form (`.weight._data`, `._scale`, `._shift`),
// whose qtype comes from `qmap` (module name -> qtype; may be null for float checkpoints).
// Shape and dtype problems are appended to `problems` (one line each, naming the tensor, the
// expected and the actual shape) so a loader can report all of them at once; the returned
// Linear is then unusable.
Linear load_linear(const TensorSet& ts, const std::map<std::string, QType>* qmap,
                   const LinearSpec& spec, std::vector<std::string>* problems);

}  // namespace qllm
