// Fuzzes the tokenizer.json loader with arbitrary bytes as the file, then runs the loaded
// tokenizer over a fixed text and decodes the result, so that the whole pipeline built from
// the file is exercised.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "format/tokenizer.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path dir = [] {
    auto d =
        std::filesystem::temp_directory_path() / ("qllm-fuzz-tok-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  FILE* f = std::fopen((dir / "tokenizer.json").c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    qllm::Tokenizer tok = qllm::Tokenizer::load(dir);
    auto ids = tok.encode("Hello <s> w\xC3\xB6rld \xE2\x98\x83 123  \n\tend", true);
    (void)tok.decode(ids);
    qllm::StreamDecoder sd(tok);
    for (int32_t id : ids) (void)sd.push(id);
    (void)sd.flush();
  } catch (const qllm::FormatError&) {
  }
  return 0;
}
