// Memory that decode streams, placed so that Linux can back it with 2 MiB pages.
//
// A decode step reads every weight once. With 4 KiB pages the hardware prefetchers stop at each
// page boundary and every 4 KiB needs its own TLB entry: two threads reading 512 MiB on the
// 2-core Zen 3 machine reached 16-19 GB/s from 4 KiB pages and 19-22 from 2 MiB pages. The
// bandwidth probe (membw.h) reads from 2 MiB pages too, so that the bound is the machine's best.
//
// Linux maps a 2 MiB page only into a 2 MiB-aligned range that lies wholly inside a mapping.
// - Anonymous memory: under THP mode "madvise" only after MADV_HUGEPAGE.
// - Files: only where the page cache holds the file in 2 MiB folios. Filesystems with large
//   folios (ext4 since Linux 6.16, XFS) read a file in so when it is faulted in through a
//   MADV_HUGEPAGE mapping; a file already cached in small folios stays in 4 KiB pages until the
//   kernel drops it from the cache.
// Everything here is a hint: where the kernel declines, the memory is ordinary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace qllm {

inline constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

// mmap(nullptr, len, prot, flags, fd, 0) placed at a 2 MiB boundary and advised MADV_HUGEPAGE
// when len is at least kHugePageBytes; a plain mmap otherwise. Returns MAP_FAILED with errno set,
// as mmap does. Release with munmap(p, len).
void* map_huge_aligned(std::size_t len, int prot, int flags, int fd);

// An owned byte buffer of anonymous memory from map_huge_aligned, for what decode and the
// bandwidth probe stream from memory rather than from the file (repacked int4/int2 weights).
// The kernel zero-fills its pages as whichever threads first touch them, in parallel when the
// repacking is: no pass over it on the allocating thread. Buffers under kHugePageBytes share
// larger mappings (huge_pages.cpp). Throws std::bad_alloc. Copies are deep.
class HugePageBuffer {
 public:
  HugePageBuffer() = default;
  explicit HugePageBuffer(std::size_t bytes);
  HugePageBuffer(const HugePageBuffer& other);
  HugePageBuffer& operator=(const HugePageBuffer& other);
  HugePageBuffer(HugePageBuffer&& other) noexcept;
  HugePageBuffer& operator=(HugePageBuffer&& other) noexcept;
  ~HugePageBuffer() { release(); }

  std::byte* data() { return data_; }
  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::byte* begin() { return data_; }
  std::byte* end() { return data_ + size_; }
  std::byte& operator[](std::size_t i) { return data_[i]; }

  struct Slab;

 private:
  void release() noexcept;

  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  Slab* slab_ = nullptr;  // the shared mapping a small buffer lies in; null: its own
};

// How much of the memory holding `ranges` is resident, and how much of that in 2 MiB pages, from
// /proc/self/smaps: the mappings that overlap any range are counted whole. Zeros where smaps
// cannot be read.
struct HugePageShare {
  uint64_t resident_bytes = 0;
  uint64_t huge_bytes = 0;  // AnonHugePages + FilePmdMapped
};
HugePageShare huge_page_share(std::span<const std::span<const std::byte>> ranges);

}  // namespace qllm
