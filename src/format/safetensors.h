// safetensors: reading single files and sharded checkpoints.
//
// On-disk layout (https://github.com/huggingface/safetensors):
//   [8 bytes]  N, little-endian u64: length of the JSON header
//   [N bytes]  JSON object: {"__metadata__": {str: str}?, "<name>": {"dtype": "F32",
//              "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
//              writers pad it with spaces to a multiple of 8
//   [rest]     data section; offsets are relative to its start
//
// The reader maps the file and validates the whole header before any tensor is used: header
// length <= 100 MiB and <= file size - 8, JSON parses, no duplicate names, dtype known, dims
// non-negative, element count and byte size without overflow, end - begin == numel * size,
// ranges inside the data section and disjoint. Tensor bytes are never copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "format/dtype.h"
#include "util/mmap.h"

namespace qllm {

inline constexpr std::size_t kMaxHeaderBytes = 100u * 1024 * 1024;

struct TensorDesc {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range within the data section
  uint64_t numel() const;
};

// A validated view of one tensor: its description and its bytes inside the mapping.
struct TensorRef {
  const TensorDesc* desc = nullptr;
  std::span<const std::byte> bytes;
  const std::filesystem::path* file = nullptr;

  DType dtype() const { return desc->dtype; }
  const std::vector<int64_t>& shape() const { return desc->shape; }
  const std::string& name() const { return desc->name; }
  uint64_t numel() const { return desc->numel(); }
  // Widens to f32 (a copy). For small tensors: norms, biases, scales.
  std::vector<float> to_f32() const;
};

class SafetensorsFile {
 public:
  // Maps and validates. Throws FormatError naming the file (and tensor) on any problem.
  explicit SafetensorsFile(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_.path(); }
  const std::vector<TensorDesc>& tensors() const { return tensors_; }  // in file order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorDesc* find(std::string_view name) const;
  TensorRef ref(const TensorDesc& d) const;
  uint64_t file_size() const { return file_.size(); }
  uint64_t header_size() const { return header_len_; }
  const MappedFile& mapping() const { return file_; }

 private:
  MappedFile file_;
  uint64_t header_len_ = 0;
  std::vector<TensorDesc> tensors_;
  std::map<std::string, std::size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// Parses and validates a header (the bytes after the 8-byte length) against a data section of
// `data_size` bytes. Exposed for the fuzz target; SafetensorsFile uses it.
struct ParsedHeader {
  std::vector<TensorDesc> tensors;
  std::map<std::string, std::string> metadata;
};
ParsedHeader parse_safetensors_header(const std::filesystem::path& path, std::string_view json,
                                      uint64_t data_size);

// All tensors of a checkpoint: one model.safetensors, or the shards an
// model.safetensors.index.json names, read as one logical set.
class TensorSet {
 public:
  // `path` is a model directory, a .safetensors file or an .index.json file.
  // Throws FormatError for a directory without weights.
  static TensorSet open(const std::filesystem::path& path);

  const TensorDesc* find(std::string_view name) const;
  bool contains(std::string_view name) const { return find(name) != nullptr; }
  // Throws FormatError "tensor 'x': missing" if absent.
  TensorRef get(std::string_view name) const;
  std::vector<TensorRef> all() const;  // shard order, then file order
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  uint64_t total_file_bytes() const;
  const std::filesystem::path& source() const { return source_; }

 private:
  std::filesystem::path source_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, std::pair<std::size_t, const TensorDesc*>, std::less<>> index_;
};

}  // namespace qllm
