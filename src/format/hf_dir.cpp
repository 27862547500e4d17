#include "format/hf_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "util/error.h"
#include "util/mmap.h"

namespace qllm {

namespace {

// Files are created with mode 0666 less the umask, like open(O_CREAT) would; mkstemp uses 0600.
mode_t creation_mode() {
  static const mode_t mode = [] {
    mode_t mask = ::umask(0);
    ::umask(mask);
    return static_cast<mode_t>(0666 & ~mask);
  }();
  return mode;
}

void fsync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: some filesystems refuse to open directories
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

AtomicFile::AtomicFile(const std::filesystem::path& path) : path_(path) {
  if (is_mapped(path))
    fail(path,
         "refusing to overwrite a file that is being read (output and input are the same "
         "file)");
  std::string tmpl = path.string() + ".tmp-XXXXXX";
  fd_ = ::mkstemp(tmpl.data());
  if (fd_ < 0) fail(path, "cannot create a temporary file beside it: {}", std::strerror(errno));
  tmp_ = tmpl;
  ::fchmod(fd_, creation_mode());
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
}

void AtomicFile::write(std::span<const std::byte> bytes) {
  const std::byte* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(path_, "write failed: {}", n < 0 ? std::strerror(errno) : "no progress");
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void AtomicFile::write(std::string_view text) {
  write(std::as_bytes(std::span<const char>(text.data(), text.size())));
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) fail(path_, "fsync failed: {}", std::strerror(errno));
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) fail(path_, "close failed: {}", std::strerror(errno));
  // Checked again: the target may have been mapped while we were writing.
  if (is_mapped(path_))
    fail(path_,
         "refusing to overwrite a file that is being read (output and input are the same "
         "file)");
  if (::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail(path_, "cannot rename the temporary file into place: {}", std::strerror(errno));
  tmp_.clear();
  fsync_dir(path_.parent_path());
}

void write_file_atomic(const std::filesystem::path& path, std::string_view text) {
  AtomicFile f(path);
  f.write(text);
  f.commit();
}

const std::vector<std::string_view>& model_side_file_names() {
  static const std::vector<std::string_view> names = {
      "config.json",
      "generation_config.json",
      "tokenizer.json",
      "tokenizer_config.json",
      "special_tokens_map.json",
      "added_tokens.json",
      "vocab.json",
      "merges.txt",
      "tokenizer.model",
      "chat_template.jinja",
      "chat_template.json",
  };
  return names;
}

std::vector<std::filesystem::path> copy_model_side_files(const std::filesystem::path& src_dir,
                                                         const std::filesystem::path& dst_dir) {
  std::vector<std::filesystem::path> written;
  std::error_code ec;
  for (std::string_view name : model_side_file_names()) {
    auto src = src_dir / name;
    if (!std::filesystem::is_regular_file(src, ec)) continue;
    auto dst = dst_dir / name;
    if (std::filesystem::equivalent(src, dst, ec)) continue;  // copying a directory onto itself
    MappedFile in(src);
    AtomicFile out(dst);
    out.write(in.bytes());
    out.commit();
    written.push_back(dst);
  }
  return written;
}

}  // namespace qllm
