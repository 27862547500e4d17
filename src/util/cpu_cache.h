// The size of this machine's last-level cache, so that a bandwidth bound can say when the data
// it assumes come from memory may come from cache instead.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace qllm {

// Bytes of one instance of the highest-level data or unified cache that CPU 0 uses, from
// Linux's sysfs (/sys/devices/system/cpu/cpu0/cache/index*/); 0 where it cannot be read.
std::size_t last_level_cache_bytes();

// A sysfs cache "size" value ("32K", "32768K", as the kernel writes it; "M" and "G" also
// taken) in bytes; nullopt for anything else.
std::optional<std::size_t> parse_cache_size(std::string_view s);

}  // namespace qllm
