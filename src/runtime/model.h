// Model: a loaded checkpoint, ready to run.
//
// Owns the mapped safetensors files and the config; Weights are views into the mappings, so a
// Model must outlive every Session built on it. Loading validates every tensor the architecture
// needs against the config and reports all problems in one FormatError.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "format/hf_config.h"
#include "format/safetensors.h"
#include "format/tokenizer.h"
#include "model/arch.h"
#include "runtime/weights.h"

namespace qllm {

class Model {
 public:
  // Reads config.json (+ generation_config.json), the safetensors weights and, for quantized
  // checkpoints, the quantization map. Throws FormatError naming the directory or tensor.
  static std::unique_ptr<Model> load(const std::filesystem::path& dir);

  const ModelConfig& config() const { return cfg_; }
  const ArchSpec& spec() const { return *spec_; }
  const Weights& weights() const { return w_; }
  const TensorSet& tensors() const { return ts_; }
  const std::filesystem::path& dir() const { return dir_; }

  // Maps the pages of every matrix that each token streams (the mmapped Linear weights, not the
  // embedding rows looked up one at a time nor copies made at load) now rather than at first
  // use (populate_pages).
  void populate() const;

  // The tokenizer of the model directory, loaded on first use. Throws FormatError if the
  // directory has none.
  const Tokenizer& tokenizer() const;

 private:
  Model() = default;
  std::filesystem::path dir_;
  ModelConfig cfg_;
  const ArchSpec* spec_ = nullptr;
  TensorSet ts_;
  std::map<std::string, QType> qmap_;  // module name -> quantized type; empty for float models
  Weights w_;
  mutable std::once_flag tok_once_;
  mutable std::unique_ptr<Tokenizer> tok_;
};

}  // namespace qllm
