// safetensors: writing single files and Hugging Face sharded checkpoints.
//
// Files are byte-identical to what the Python `safetensors` package writes (save_file of numpy or
// torch tensors) for the same tensors and metadata:
//   - tensors are laid out sorted by dtype, widest alignment first, then by name (byte order);
//     the dtype rank is the declaration order of safetensors' Rust `Dtype` enum;
//   - the header is compact JSON: {"__metadata__":{...},"<name>":{"dtype":"F32","shape":[..],
//     "data_offsets":[b,e]},...} with tensors in layout order, padded with spaces to a multiple
//     of 8 bytes;
//   - data follows with no gaps.
// With more than one __metadata__ entry Python's order follows a Rust HashMap and is not
// reproducible; we write those entries sorted by key.
//
// write_model_weights() splits tensors into shards the way transformers' save_pretrained does
// (huggingface_hub split_state_dict_into_shards_factory): in the given order, a tensor that would
// push the current shard past the limit starts a new shard, a tensor larger than the limit gets a
// shard of its own, inserted before the shard being filled. The index is json.dumps(indent=2,
// sort_keys=True) + "\n" of {"metadata": {"total_parameters", "total_size"}, "weight_map"}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/dtype.h"

namespace qllm {

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  // Called once, in file order, with a buffer of exactly numel*dtype_size bytes to fill.
  std::function<void(std::span<std::byte>)> fill;
};

struct WriteOptions {
  std::map<std::string, std::string> metadata;  // __metadata__, e.g. {"format":"pt"}
  uint64_t max_shard_bytes = 0;                 // 0: never shard
  // The index's "total_parameters" (transformers' model.num_parameters()). Unset: the sum of the
  // element counts of the tensors written, which is the same for an unquantized checkpoint.
  std::optional<uint64_t> total_parameters;
};

// Streams tensors to `path`: header first, then each tensor's bytes via fill() into one reused
// buffer, so peak memory is one tensor. Writes <path>.tmp-XXXX, fsyncs, renames, fsyncs the dir.
// Refuses (FormatError) if `path` is a file this process has mapped (util/mmap.h is_mapped()).
void write_safetensors(const std::filesystem::path& path, std::vector<TensorToWrite> tensors,
                       const WriteOptions& opts = {});

// Writes a model's weights into `dir` the way HF save_pretrained does: one model.safetensors, or
// past max_shard_bytes, model-00001-of-0000N.safetensors ... plus model.safetensors.index.json
// ({"metadata": {"total_size": N}, "weight_map": {...}}, same key order/format as transformers).
// Returns the list of files written. Weight files of the other layout left in `dir` by an earlier
// save (stale shards, index or single file) are removed so the directory reads back as written.
std::vector<std::filesystem::path> write_model_weights(const std::filesystem::path& dir,
                                                       std::vector<TensorToWrite> tensors,
                                                       const WriteOptions& opts);

// ---- building blocks, exposed for tests and tools ----

// Rank of a dtype in safetensors' layout order: higher is laid out first.
int safetensors_dtype_rank(DType t);

// The order in which write_safetensors lays tensors out (indices into `tensors`).
std::vector<std::size_t> safetensors_layout_order(const std::vector<TensorToWrite>& tensors);

// The padded header JSON (without the 8-byte length) for tensors in layout order.
std::string safetensors_header(const std::vector<const TensorToWrite*>& ordered,
                               const std::map<std::string, std::string>& metadata);

// Parses a shard size as huggingface_hub parse_size_to_int does: a number followed by KB, MB,
// GB or TB (powers of 10, case-insensitive), e.g. "10MB" = 10,000,000. A bare integer is bytes.
// Throws FormatError on anything else.
uint64_t parse_shard_size(std::string_view text);

}  // namespace qllm
