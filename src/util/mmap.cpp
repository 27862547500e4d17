#include "util/mmap.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <set>
#include <utility>

#include "util/error.h"
#include "util/huge_pages.h"

namespace qllm {
namespace {

std::mutex g_registry_mutex;
std::multiset<std::pair<unsigned long, unsigned long>>& registry() {
  static std::multiset<std::pair<unsigned long, unsigned long>> r;
  return r;
}

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, "cannot open: {}", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail(path, "cannot stat: {}", std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  size_ = static_cast<std::size_t>(st.st_size);
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  if (size_ > 0) {
    // At a 2 MiB boundary, so that a file cached in 2 MiB folios is mapped 2 MiB at a time.
    void* p = map_huge_aligned(size_, PROT_READ, MAP_SHARED, fd);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail(path, "cannot mmap {} bytes: {}", size_, std::strerror(e));
    }
    data_ = static_cast<const std::byte*>(p);
  }
  ::close(fd);
  std::lock_guard lock(g_registry_mutex);
  registry().insert({dev_, ino_});
}

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& o) noexcept
    : path_(std::move(o.path_)), data_(o.data_), size_(o.size_), dev_(o.dev_), ino_(o.ino_) {
  o.data_ = nullptr;
  o.size_ = 0;
  o.dev_ = o.ino_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    data_ = o.data_;
    size_ = o.size_;
    dev_ = o.dev_;
    ino_ = o.ino_;
    o.data_ = nullptr;
    o.size_ = 0;
    o.dev_ = o.ino_ = 0;
  }
  return *this;
}

void MappedFile::release() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
  if (dev_ || ino_) {
    std::lock_guard lock(g_registry_mutex);
    auto it = registry().find({dev_, ino_});
    if (it != registry().end()) registry().erase(it);
  }
  data_ = nullptr;
  size_ = 0;
  dev_ = ino_ = 0;
}

void MappedFile::advise_sequential() const {
  if (data_) ::madvise(const_cast<std::byte*>(data_), size_, MADV_SEQUENTIAL);
}

void MappedFile::advise_willneed() const {
  if (data_) ::madvise(const_cast<std::byte*>(data_), size_, MADV_WILLNEED);
}

bool is_mapped(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  std::lock_guard lock(g_registry_mutex);
  return registry().count({static_cast<unsigned long>(st.st_dev),
                           static_cast<unsigned long>(st.st_ino)}) > 0;
}

void release_pages(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  static const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t b = reinterpret_cast<uintptr_t>(bytes.data()) & ~(page - 1);
  const uintptr_t e = reinterpret_cast<uintptr_t>(bytes.data()) + bytes.size();
  ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

void populate_pages(std::span<const std::byte> bytes) {
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14; older kernels answer EINVAL, which costs nothing
#endif
  if (bytes.empty()) return;
  static const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t b = reinterpret_cast<uintptr_t>(bytes.data()) & ~(page - 1);
  const uintptr_t e = reinterpret_cast<uintptr_t>(bytes.data()) + bytes.size();
  ::madvise(reinterpret_cast<void*>(b), e - b, MADV_POPULATE_READ);
}

}  // namespace qllm
