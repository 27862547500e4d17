// Fuzzes the safetensors header parser and validator with arbitrary bytes as a whole file.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "format/safetensors.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/qllm-fuzz-" + std::to_string(::getpid()) + ".safetensors";
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
    }
  } catch (const qllm::FormatError&) {
  }
  return 0;
}
