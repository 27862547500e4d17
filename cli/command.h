// Subcommand registry. Each cli/<name>.cpp defines one subcommand and registers it with a
// static Command object, so adding a subcommand is adding one file.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace qllm::cli {

struct Command {
  // `setup` declares the subcommand's options on `sub` and returns the function that runs it.
  using Setup = std::function<std::function<int()>(CLI::App& sub)>;
  Command(std::string name, std::string help, Setup setup);
};

struct Registered {
  std::string name, help;
  Command::Setup setup;
};
std::vector<Registered>& registry();

// The shared data directory: $QLLM_DATA_DIR, or ../shared relative to the working directory.
std::string data_dir();

}  // namespace qllm::cli
