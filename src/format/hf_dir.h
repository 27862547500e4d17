// Writing files of a Hugging Face model directory safely.
//
// Every output is written to "<path>.tmp-XXXXXX" in the same directory, fsynced, renamed over
// <path> and the directory fsynced, so a reader sees the old file or the new one, never a partial
// one; on any error the temporary file is removed. A file this process has mapped (an input being
// read) is never replaced.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

namespace qllm {

class AtomicFile {
 public:
  // Creates the temporary file. Throws FormatError if `path` is mapped by this process or the
  // temporary cannot be created.
  explicit AtomicFile(const std::filesystem::path& path);
  ~AtomicFile();  // removes the temporary unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::span<const std::byte> bytes);
  void write(std::string_view text);
  // fsync, close, rename over the target, fsync the directory.
  void commit();

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_, tmp_;
  int fd_ = -1;
};

// Writes `text` to `path` atomically.
void write_file_atomic(const std::filesystem::path& path, std::string_view text);

// The non-weight files of a model directory that describe the model (config, generation config,
// tokenizer, chat template), in the order they are copied.
const std::vector<std::string_view>& model_side_file_names();

// Copies those of model_side_file_names() that exist in `src_dir` into `dst_dir` (atomically,
// byte for byte). Returns the paths written.
std::vector<std::filesystem::path> copy_model_side_files(const std::filesystem::path& src_dir,
                                                         const std::filesystem::path& dst_dir);

}  // namespace qllm
