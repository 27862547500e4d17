// The last-level cache size that `qllm bench` compares a token's reads with: the sysfs size
// format, as Linux's drivers/base/cacheinfo.c writes it ("%uK"), and the machine's own value.
#include <gtest/gtest.h>

#include <filesystem>

#include "util/cpu_cache.h"

namespace qllm {
namespace {

TEST(CpuCache, ParsesSysfsSizes) {
  EXPECT_EQ(parse_cache_size("32K"), 32u << 10);
  EXPECT_EQ(parse_cache_size("32768K"), 32u << 20);
  EXPECT_EQ(parse_cache_size("307200K"), 300u << 20);
  EXPECT_EQ(parse_cache_size("2M"), 2u << 20);
  EXPECT_EQ(parse_cache_size("1G"), 1u << 30);
  for (const char* bad : {"", "K", "32", "32KB", "-1K", "32k", " 32K", "32Q", "99999999999999999999K"})
    EXPECT_EQ(parse_cache_size(bad), std::nullopt) << '"' << bad << '"';
}

// Where sysfs describes CPU 0's caches, the last level is found and is larger than 64 KiB
// (every x86-64 and Arm server CPU has an L2 or L3 of at least 256 KiB).
TEST(CpuCache, ReadsThisMachine) {
  if (!std::filesystem::exists("/sys/devices/system/cpu/cpu0/cache/index0/size"))
    GTEST_SKIP() << "no cache description in sysfs";
  EXPECT_GT(last_level_cache_bytes(), 64u << 10);
}

}  // namespace
}  // namespace qllm
