// Parsing "--ids 1,2,3" style token lists, shared by the commands that take token ids.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace qllm::cli {

inline std::vector<int32_t> parse_token_ids(std::string_view option, const std::string& list) {
  std::vector<int32_t> ids;
  std::size_t pos = 0;
  while (pos <= list.size()) {
    std::size_t end = list.find(',', pos);
    if (end == std::string::npos) end = list.size();
    std::string_view item(list.data() + pos, end - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    int32_t v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size() || v < 0)
      fail_usage("{}: '{}' is not a token id (expected comma-separated non-negative integers)",
                 option, item);
    ids.push_back(v);
    pos = end + 1;
  }
  return ids;
}

}  // namespace qllm::cli
