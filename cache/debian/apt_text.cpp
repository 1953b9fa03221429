#include "cache/debian/apt_text.hpp"

#include <apt-pkg/error.h>
#include <sys/mman.h>
#include <unistd.h>

#include "src/base/unique_fd.hpp"

namespace digestfs {

std::string apt_errors() {
  std::string out;
  std::string message;
  while (!_error->empty()) {
    _error->PopMessage(message);
    if (!out.empty()) out += "; ";
    out += message;
  }
  return out.empty() ? "libapt-pkg gave no reason" : out;
}

Result<void> for_each_stanza(const std::string& text, const std::string& what,
                             const std::function<void(const pkgTagSection&)>& each) {
  UniqueFd memory(::memfd_create("digestfs-deb822", MFD_CLOEXEC));
  if (!memory) return errno_error("memfd_create");
  for (size_t done = 0; done < text.size();) {
    ssize_t n = ::write(memory.get(), text.data() + done, text.size() - done);
    if (n < 0) return errno_error("write " + what + " to memory");
    done += static_cast<size_t>(n);
  }
  if (::lseek(memory.get(), 0, SEEK_SET) < 0) return errno_error("lseek");
  FileFd fd;
  if (!fd.OpenDescriptor(memory.release(), FileFd::ReadOnly, FileFd::None, true))
    return Error{EIO, what + ": " + apt_errors()};
  pkgTagFile tags(&fd);
  pkgTagSection section;
  while (tags.Step(section)) each(section);
  if (_error->PendingError()) return Error{EBADMSG, what + ": " + apt_errors()};
  return {};
}

Result<std::string> read_apt_file(const std::string& path) {
  FileFd fd;
  if (!fd.Open(path, FileFd::ReadOnly, FileFd::Extension))
    return Error{ENOENT, path + ": " + apt_errors()};
  std::string out;
  char buf[1 << 16];
  for (;;) {
    unsigned long long got = 0;
    if (!fd.Read(buf, sizeof buf, &got)) return Error{EIO, path + ": " + apt_errors()};
    if (got == 0) return out;
    out.append(buf, got);
  }
}

}  // namespace digestfs
