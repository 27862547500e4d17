#include "util/huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <new>
#include <string>
#include <utility>

namespace qllm {

void* map_huge_aligned(std::size_t len, int prot, int flags, int fd) {
  if (len < kHugePageBytes) return ::mmap(nullptr, len, prot, flags, fd, 0);
  // Reserve 2 MiB more address space than needed, put the mapping at the reservation's first
  // 2 MiB boundary, and give back what is left on either side.
  const std::size_t reserved = len + kHugePageBytes;
  void* r = ::mmap(nullptr, reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) return MAP_FAILED;
  const auto base = reinterpret_cast<uintptr_t>(r);
  const uintptr_t at = (base + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  void* p = ::mmap(reinterpret_cast<void*>(at), len, prot, flags | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) {
    const int e = errno;
    ::munmap(r, reserved);
    errno = e;
    return MAP_FAILED;
  }
  static const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t end = at + (len + page - 1) / page * page;
  const uintptr_t reserved_end = base + (reserved + page - 1) / page * page;
  if (at > base) ::munmap(r, at - base);
  if (reserved_end > end) ::munmap(reinterpret_cast<void*>(end), reserved_end - end);
  ::madvise(p, len, MADV_HUGEPAGE);  // a hint: kernels without THP refuse it, harmlessly
  return p;
}

// Buffers under kHugePageBytes share slabs, so that small matrices also lie in 2 MiB pages. In
// mappings of their own, GPT-2's int4 matrices (288 KiB-1.1 MiB) had only 29% of the model's
// repacked bytes in 2 MiB pages, and 99% in slabs. A slab is handed out front to back, never
// reused, and unmapped with its last buffer, so every buffer starts zeroed. The untouched tail
// of a slab is reserved address space, not memory.
struct HugePageBuffer::Slab {
  std::byte* base = nullptr;
  std::size_t used = 0;
  int live = 0;  // buffers not yet freed
};

namespace {

void* allocate_huge_aligned(std::size_t bytes) {
  void* p = map_huge_aligned(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
}

void free_huge_aligned(void* p, std::size_t bytes) {
  if (p) ::munmap(p, bytes);
}

constexpr std::size_t kSlabBytes = 16 * kHugePageBytes;
constexpr std::size_t kSlabAlign = 64;  // a cache line

std::mutex g_slab_mutex;
HugePageBuffer::Slab* g_slab = nullptr;  // the one buffers are taken from

}  // namespace

HugePageBuffer::HugePageBuffer(std::size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  if (bytes >= kHugePageBytes) {
    data_ = static_cast<std::byte*>(allocate_huge_aligned(bytes));
    return;
  }
  std::lock_guard lock(g_slab_mutex);
  if (g_slab == nullptr || g_slab->used + bytes > kSlabBytes) {
    auto* fresh = new Slab{static_cast<std::byte*>(allocate_huge_aligned(kSlabBytes))};
    if (g_slab != nullptr && g_slab->live == 0) {
      free_huge_aligned(g_slab->base, kSlabBytes);
      delete g_slab;
    }
    g_slab = fresh;
  }
  slab_ = g_slab;
  data_ = slab_->base + slab_->used;
  slab_->used += (bytes + kSlabAlign - 1) / kSlabAlign * kSlabAlign;
  ++slab_->live;
}

void HugePageBuffer::release() noexcept {
  if (slab_ == nullptr) {
    free_huge_aligned(data_, size_);
  } else {
    std::lock_guard lock(g_slab_mutex);
    if (--slab_->live == 0 && slab_ != g_slab) {
      free_huge_aligned(slab_->base, kSlabBytes);
      delete slab_;
    }
  }
  data_ = nullptr;
  size_ = 0;
  slab_ = nullptr;
}

HugePageBuffer::HugePageBuffer(const HugePageBuffer& other) : HugePageBuffer(other.size_) {
  if (size_) std::memcpy(data_, other.data_, size_);
}

HugePageBuffer& HugePageBuffer::operator=(const HugePageBuffer& other) {
  if (this != &other) *this = HugePageBuffer(other);
  return *this;
}

HugePageBuffer::HugePageBuffer(HugePageBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      slab_(std::exchange(other.slab_, nullptr)) {}

HugePageBuffer& HugePageBuffer::operator=(HugePageBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    slab_ = std::exchange(other.slab_, nullptr);
  }
  return *this;
}

HugePageShare huge_page_share(std::span<const std::span<const std::byte>> ranges) {
  HugePageShare share;
  std::ifstream smaps("/proc/self/smaps");
  bool counted = false;  // the current mapping overlaps a range
  std::string line;
  while (std::getline(smaps, line)) {
    unsigned long begin = 0, end = 0;
    unsigned long kb = 0;
    char key[32];
    if (std::sscanf(line.c_str(), "%lx-%lx ", &begin, &end) == 2) {
      counted = false;
      for (const auto& r : ranges) {
        const auto lo = reinterpret_cast<uintptr_t>(r.data());
        if (!r.empty() && lo < end && lo + r.size() > begin) counted = true;
      }
    } else if (counted && std::sscanf(line.c_str(), "%31[^:]: %lu kB", key, &kb) == 2) {
      const std::string k = key;
      if (k == "Rss") share.resident_bytes += uint64_t{kb} << 10;
      if (k == "AnonHugePages" || k == "FilePmdMapped") share.huge_bytes += uint64_t{kb} << 10;
    }
  }
  return share;
}

}  // namespace qllm
