#include "testing.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace qllm::test {

std::filesystem::path data_dir() {
  const char* env = std::getenv("QLLM_DATA_DIR");
  if (env && *env) return env;
  return std::filesystem::path(QLLM_SOURCE_DIR) / ".." / "shared";
}

std::filesystem::path test_data_dir() { return std::filesystem::path(QLLM_SOURCE_DIR) / "tests" / "data"; }

std::filesystem::path temp_dir(const std::string& tag) {
  auto base = std::filesystem::temp_directory_path() /
              ("qllm-test-" + tag + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  return base;
}

namespace {
std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace

CommandResult run_qllm(const std::string& args) {
  auto dir = std::filesystem::temp_directory_path();
  auto tag = std::to_string(::getpid()) + "-" + std::to_string(std::rand());
  auto out = dir / ("qllm-out-" + tag), err = dir / ("qllm-err-" + tag);
  std::string cmd = std::string("QLLM_DATA_DIR='") + data_dir().string() + "' '" + QLLM_BINARY +
                    "' " + args + " >'" + out.string() + "' 2>'" + err.string() + "' </dev/null";
  int status = std::system(cmd.c_str());
  CommandResult r{WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), slurp(out),
                  slurp(err)};
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

}  // namespace qllm::test
