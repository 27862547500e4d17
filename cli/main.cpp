// qllm: quantize, inspect and run Hugging Face causal LMs.
//
// Data goes to stdout, logs and progress to stderr. Bad input prints one line
// "error: <message>" and exits 2; usage errors print the message and the usage, exit 2.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>

#include "command.h"
#include "util/error.h"

namespace qllm::cli {

std::vector<Registered>& registry() {
  static std::vector<Registered> r;
  return r;
}

Command::Command(std::string name, std::string help, Setup setup) {
  registry().push_back({std::move(name), std::move(help), std::move(setup)});
}

std::string data_dir() {
  const char* env = std::getenv("QLLM_DATA_DIR");
  return env && *env ? env : "../shared";
}

}  // namespace qllm::cli

int main(int argc, char** argv) {
  using namespace qllm::cli;
  CLI::App app{"qllm: quantize, inspect and run Hugging Face causal LMs, natively"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "qllm 0.1.0");
  std::vector<std::pair<CLI::App*, std::function<int()>>> runs;
  std::sort(registry().begin(), registry().end(),
            [](const Registered& a, const Registered& b) { return a.name < b.name; });
  for (auto& r : registry()) {
    CLI::App* sub = app.add_subcommand(r.name, r.help);
    runs.emplace_back(sub, r.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    for (auto& [sub, run] : runs)
      if (sub->parsed()) return run();
  } catch (const qllm::FormatError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return 2;
}
