// A compiled PCRE2 pattern for pre-tokenizer splits. tokenizer.json patterns are written for
// Oniguruma (\p{L}, \p{N}, look-ahead), which PCRE2 reads the same way in UTF + UCP mode.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qllm {

class TokenRegex {
 public:
  // Throws std::invalid_argument with PCRE2's message if the pattern does not compile.
  explicit TokenRegex(const std::string& pattern);
  // Every non-overlapping match in `text`, as [begin, end) byte offsets, left to right.
  // `text` must be valid UTF-8.
  std::vector<std::pair<std::size_t, std::size_t>> find_all(std::string_view text) const;

 private:
  struct Code;
  std::shared_ptr<Code> code_;
};

}  // namespace qllm
