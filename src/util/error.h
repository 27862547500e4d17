// Errors: strict at boundaries, silent in kernels.
//
// Untrusted input (files, config.json, tokenizer.json, CLI values) throws FormatError, whose
// message is already the one line a user sees: "<file>: tensor '<name>': <what> (expected X,
// got Y)". The CLI catches it at the boundary, prints "error: <message>" and exits 2.
// Programming errors use QLLM_ASSERT, which is always on and aborts.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace qllm {

class FormatError : public std::runtime_error {
 public:
  explicit FormatError(const std::string& message) : std::runtime_error(message) {}
};

// Builds "<path>: <message>" from a fmt format string and throws FormatError.
template <typename... Args>
[[noreturn]] void fail(const std::filesystem::path& path, fmt::format_string<Args...> f,
                       Args&&... args) {
  throw FormatError(fmt::format("{}: {}", path.string(), fmt::format(f, std::forward<Args>(args)...)));
}

// Usage errors of the CLI that are not tied to a file.
template <typename... Args>
[[noreturn]] void fail_usage(fmt::format_string<Args...> f, Args&&... args) {
  throw FormatError(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace qllm

#define QLLM_ASSERT(cond)                                                              \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "qllm: assertion failed: %s (%s:%d)\n", #cond, __FILE__, \
                   __LINE__);                                                          \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

#ifdef NDEBUG
#define QLLM_DASSERT(cond) ((void)0)
#else
#define QLLM_DASSERT(cond) QLLM_ASSERT(cond)
#endif
