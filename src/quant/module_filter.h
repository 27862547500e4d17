// Which modules a quantization touches: optimum-quanto's include/exclude semantics.
//
// quanto.quantize(model, include=..., exclude=...) matches fnmatch shell patterns against the
// dotted module name (Python fnmatch: `*` also crosses dots, `?`, `[seq]`, `[!seq]`, no escape
// character): a module is kept if it matches any include pattern (or none are given) and no
// exclude pattern.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace qllm {

// Python fnmatch.fnmatchcase semantics.
bool fnmatch_module(std::string_view pattern, std::string_view name);

class ModuleFilter {
 public:
  ModuleFilter(std::vector<std::string> include, std::vector<std::string> exclude);
  // Records which patterns matched, for unmatched_patterns().
  bool selected(std::string_view module);
  // "--include PAT" / "--exclude PAT" for every pattern that matched no module seen so far.
  std::vector<std::string> unmatched_patterns() const;

 private:
  std::vector<std::string> include_, exclude_;
  std::vector<bool> include_hit_, exclude_hit_;
};

}  // namespace qllm
