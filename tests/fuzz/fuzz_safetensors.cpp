// Fuzzes the safetensors header parser and validator with arbitrary bytes as a whole file.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "format/safetensors.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The reader maps files, so each input goes through one scratch file per process.
  static const std::string path = (std::filesystem::temp_directory_path() /
                                   ("qllm-fuzz-" + std::to_string(::getpid()) + ".safetensors"))
                                      .string();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    qllm::SafetensorsFile file(path);
    for (const auto& t : file.tensors()) {
      auto ref = file.ref(t);
      // Touch the first and last byte: must be inside the mapping.
      if (!ref.bytes.empty()) {
        volatile std::byte a = ref.bytes.front(), b = ref.bytes.back();
        (void)a;
        (void)b;
      }
      // Widening reads every byte of small tensors through the dtype table.
      if (t.numel() <= 4096) (void)ref.to_f32();
    }
  } catch (const qllm::FormatError&) {
  }
  return 0;
}
