// Memory placed for 2 MiB pages (util/huge_pages.h): where the weights' file and repacked
// buffers land, that the bytes are intact, and the resident and 2 MiB-page counts that
// `qllm bench` reads back from the kernel's /proc/self/smaps.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <vector>

#include "testing.h"
#include "util/huge_pages.h"
#include "util/mmap.h"

namespace qllm {
namespace {

bool huge_aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kHugePageBytes == 0; }

TEST(HugePages, LargeBlocksStartOnA2MiBBoundaryAndAreZeroed) {
  for (std::size_t bytes : {kHugePageBytes, 5 * kHugePageBytes + 123}) {
    HugePageBuffer buf(bytes);
    auto* p = reinterpret_cast<uint8_t*>(buf.data());
    EXPECT_TRUE(huge_aligned(p)) << bytes;
    EXPECT_EQ(p[0], 0);
    EXPECT_EQ(p[bytes - 1], 0);
    std::memset(p, 0xab, bytes);  // every byte writable, the last page's tail included
    EXPECT_EQ(p[bytes - 1], 0xab);
  }
  HugePageBuffer small(100);
  std::memset(small.data(), 1, 100);
}

TEST(HugePages, BuffersOfRepackedBytes) {
  HugePageBuffer big(3 * kHugePageBytes / 2);
  ASSERT_EQ(big.size(), 3 * kHugePageBytes / 2);
  EXPECT_TRUE(huge_aligned(big.data()));
  EXPECT_EQ(big[big.size() - 1], std::byte{0});
  big[big.size() - 1] = std::byte{7};
  HugePageBuffer copy = big;  // deep: a second mapping with the same bytes
  EXPECT_NE(copy.data(), big.data());
  EXPECT_EQ(copy[copy.size() - 1], std::byte{7});
  HugePageBuffer moved = std::move(copy);
  EXPECT_TRUE(copy.empty());
  EXPECT_EQ(moved[moved.size() - 1], std::byte{7});
  copy = moved;
  moved = HugePageBuffer(10);  // the old mapping is released, the new one zeroed
  EXPECT_EQ(moved.size(), 10u);
  for (std::byte b : moved) EXPECT_EQ(b, std::byte{0});
  EXPECT_EQ(copy[copy.size() - 1], std::byte{7});
  EXPECT_TRUE(HugePageBuffer().empty());
  EXPECT_TRUE(HugePageBuffer(0).empty());
}

// Small buffers share larger mappings: each is still zeroed, cache-line aligned and its own,
// across more than one shared mapping and after others are freed.
TEST(HugePages, SmallBuffersAreZeroedAndDisjoint) {
  std::vector<HugePageBuffer> bufs;
  for (int i = 0; i < 120; ++i) bufs.emplace_back(300 * 1024 + 8 * i);  // 36 MiB in all
  for (std::size_t i = 0; i < bufs.size(); ++i) {
    ASSERT_EQ(reinterpret_cast<uintptr_t>(bufs[i].data()) % 64, 0u) << i;
    for (std::byte b : bufs[i]) ASSERT_EQ(b, std::byte{0}) << i;
    std::memset(bufs[i].data(), static_cast<int>(i + 1), bufs[i].size());
  }
  for (std::size_t i = 0; i < bufs.size(); i += 2) bufs[i] = HugePageBuffer(100);
  for (std::size_t i = 0; i < bufs.size(); ++i) {
    const auto want = i % 2 ? std::byte(i + 1) : std::byte{0};
    for (std::byte b : bufs[i]) ASSERT_EQ(b, want) << i;
  }
}

TEST(HugePages, FilesAreMappedAtA2MiBBoundary) {
  const auto path = test::temp_dir("huge_pages") / "weights.bin";
  std::vector<uint8_t> bytes(2 * kHugePageBytes + 4097);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 31 + 7);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  MappedFile f(path);
  ASSERT_EQ(f.size(), bytes.size());
  EXPECT_TRUE(huge_aligned(f.bytes().data()));
  EXPECT_EQ(std::memcmp(f.bytes().data(), bytes.data(), bytes.size()), 0);
}

// The kernel's counts for a buffer that has been written in full: all of it resident, and no
// more of it in 2 MiB pages than is resident. Whether the kernel grants 2 MiB pages at all
// depends on its configuration, so their number is not asserted.
TEST(HugePages, ShareCountsTheMappingsThatHoldTheRanges) {
  const std::size_t bytes = 4 * kHugePageBytes;
  HugePageBuffer buf(bytes);
  std::memset(buf.data(), 1, bytes);
  const std::span<const std::byte> ranges[] = {{buf.data() + 100, 200}, {buf.data() + bytes - 10, 10}};
  const HugePageShare share = huge_page_share(ranges);
  if (share.resident_bytes == 0 && !std::ifstream("/proc/self/smaps")) GTEST_SKIP() << "no /proc/self/smaps";
  EXPECT_GE(share.resident_bytes, bytes);
  // Only this buffer is advised for 2 MiB pages here, so no other memory shares its mapping.
  EXPECT_LE(share.resident_bytes, bytes + 4096);
  EXPECT_LE(share.huge_bytes, share.resident_bytes);

  const HugePageShare none = huge_page_share({});
  EXPECT_EQ(none.resident_bytes, 0u);
  EXPECT_EQ(none.huge_bytes, 0u);
}

}  // namespace
}  // namespace qllm
