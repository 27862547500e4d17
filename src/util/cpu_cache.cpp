#include "util/cpu_cache.h"

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace qllm {
namespace {

std::string first_line(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::string s;
  std::getline(f, s);
  return s;
}

}  // namespace

std::optional<std::size_t> parse_cache_size(std::string_view s) {
  std::size_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end == s.data() || end + 1 != s.data() + s.size()) return std::nullopt;
  int shift = 0;
  switch (*end) {
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    default: return std::nullopt;
  }
  if (n > (SIZE_MAX >> shift)) return std::nullopt;
  return n << shift;
}

std::size_t last_level_cache_bytes() {
  std::error_code ec;
  int best_level = 0;
  std::size_t best = 0;
  for (const auto& e : std::filesystem::directory_iterator("/sys/devices/system/cpu/cpu0/cache", ec)) {
    if (e.path().filename().string().rfind("index", 0) != 0) continue;
    if (first_line(e.path() / "type") == "Instruction") continue;
    int level = 0;
    const std::string l = first_line(e.path() / "level");
    std::from_chars(l.data(), l.data() + l.size(), level);
    const auto size = parse_cache_size(first_line(e.path() / "size"));
    if (size && level > best_level) best_level = level, best = *size;
  }
  return best;
}

}  // namespace qllm
