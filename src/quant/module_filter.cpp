#include "quant/module_filter.h"

#include <fnmatch.h>

namespace qllm {

bool fnmatch_module(std::string_view pattern, std::string_view name) {
  // FNM_NOESCAPE: Python's fnmatch treats backslash as an ordinary character.
  return ::fnmatch(std::string(pattern).c_str(), std::string(name).c_str(), FNM_NOESCAPE) == 0;
}

ModuleFilter::ModuleFilter(std::vector<std::string> include, std::vector<std::string> exclude)
    : include_(std::move(include)),
      exclude_(std::move(exclude)),
      include_hit_(include_.size(), false),
      exclude_hit_(exclude_.size(), false) {}

bool ModuleFilter::selected(std::string_view module) {
  bool in = include_.empty();
  for (std::size_t i = 0; i < include_.size(); ++i)
    if (fnmatch_module(include_[i], module)) in = include_hit_[i] = true;
  bool out = false;
  for (std::size_t i = 0; i < exclude_.size(); ++i)
    if (fnmatch_module(exclude_[i], module)) out = exclude_hit_[i] = true;
  return in && !out;
}

std::vector<std::string> ModuleFilter::unmatched_patterns() const {
  std::vector<std::string> r;
  for (std::size_t i = 0; i < include_.size(); ++i)
    if (!include_hit_[i]) r.push_back("--include " + include_[i]);
  for (std::size_t i = 0; i < exclude_.size(); ++i)
    if (!exclude_hit_[i]) r.push_back("--exclude " + exclude_[i]);
  return r;
}

}  // namespace qllm
