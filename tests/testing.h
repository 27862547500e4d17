// Test helpers: where the shared data and committed goldens live, and running the CLI.
#pragma once

#include <filesystem>
#include <string>

namespace qllm::test {

// $QLLM_DATA_DIR, or ../shared beside the source tree.
std::filesystem::path data_dir();
// tests/data in the source tree (committed goldens and fixtures).
std::filesystem::path test_data_dir();
// A fresh empty directory under the system temp dir, removed at exit.
std::filesystem::path temp_dir(const std::string& tag);

struct CommandResult {
  int exit_code;
  std::string out, err;
};
// Runs the qllm binary with `args` (shell-quoted by the caller), capturing stdout and stderr.
CommandResult run_qllm(const std::string& args);

}  // namespace qllm::test
