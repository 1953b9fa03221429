#include "tests/support/files.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "src/base/unique_fd.hpp"

namespace digestfs::test {
namespace {

::testing::AssertionResult put(const std::filesystem::path& p, const std::string& text, int flags) {
  int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
  if (fd < 0) return ::testing::AssertionFailure() << "open " << p << ": " << std::strerror(errno);
  const ssize_t n = write(fd, text.data(), text.size());
  const int write_errno = errno;
  const bool closed = close(fd) == 0;
  if (n != static_cast<ssize_t>(text.size())) {
    return ::testing::AssertionFailure() << "write " << p << ": " << std::strerror(write_errno);
  }
  if (!closed)
    return ::testing::AssertionFailure() << "close " << p << ": " << std::strerror(errno);
  return ::testing::AssertionSuccess();
}

}  // namespace

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

::testing::AssertionResult write_text(const std::filesystem::path& p, const std::string& text) {
  return put(p, text, O_TRUNC);
}

::testing::AssertionResult append_text(const std::filesystem::path& p, const std::string& text) {
  return put(p, text, O_APPEND);
}

ReadResult read_file(const std::filesystem::path& p) {
  ReadResult r;
  const UniqueFd fd(open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    r.error = errno;
    return r;
  }
  char buf[65536];
  ssize_t n;
  while ((n = read(fd.get(), buf, sizeof buf)) > 0) r.bytes.append(buf, static_cast<size_t>(n));
  if (n < 0) r.error = errno;
  return r;
}

::testing::AssertionResult drop_from_page_cache(const std::filesystem::path& p) {
  const UniqueFd fd(open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ::testing::AssertionFailure() << "open " << p << ": " << std::strerror(errno);
  struct stat st;
  std::string failed;
  if (fdatasync(fd.get()) != 0 || posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED) != 0 ||
      fstat(fd.get(), &st) != 0) {
    failed = std::strerror(errno);
  } else if (st.st_size > 0) {
    const size_t size = static_cast<size_t>(st.st_size);
    void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
    std::vector<unsigned char> resident((size + 4095) / 4096);
    if (map == MAP_FAILED || mincore(map, size, resident.data()) != 0) {
      failed = std::strerror(errno);
    } else if (std::any_of(resident.begin(), resident.end(),
                           [](unsigned char r) { return r & 1; })) {
      failed = "pages are still in the page cache";
    }
    if (map != MAP_FAILED) munmap(map, size);
  }
  if (!failed.empty()) return ::testing::AssertionFailure() << p << ": " << failed;
  return ::testing::AssertionSuccess();
}

size_t open_fds(pid_t pid) {
  const std::string dir = "/proc/" + (pid ? std::to_string(pid) : std::string("self")) + "/fd";
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

size_t open_fds_of(pid_t pid, const std::string& target) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code link_ec;
    n += std::filesystem::read_symlink(e.path(), link_ec).string() == target;
  }
  return n;
}

}  // namespace digestfs::test
