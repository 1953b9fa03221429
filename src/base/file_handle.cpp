#include "src/base/file_handle.hpp"

#include <cerrno>
#include <cstring>

namespace digestfs {
namespace {

// Linux 6.13 and later; older kernels refuse the flag with EINVAL, and the caller keeps fds.
#ifndef AT_HANDLE_CONNECTABLE
constexpr int AT_HANDLE_CONNECTABLE = 0x002;
#endif

struct HandleBuffer {
  file_handle header;
  unsigned char f_handle[MAX_HANDLE_SZ];
};

}  // namespace

std::optional<FileHandle> FileHandle::of(int dir, const char* name, int mount_id) {
  HandleBuffer buffer{};
  buffer.header.handle_bytes = MAX_HANDLE_SZ;
  int at = -1;
  if (name_to_handle_at(dir, name, &buffer.header, &at, AT_HANDLE_CONNECTABLE) != 0) {
    return std::nullopt;
  }
  if (at != mount_id) {
    errno = EXDEV;
    return std::nullopt;
  }
  FileHandle h;
  const auto* begin = reinterpret_cast<const unsigned char*>(&buffer);
  h.bytes_.assign(begin, begin + sizeof(file_handle) + buffer.header.handle_bytes);
  return h;
}

int FileHandle::mount_id_of(int fd) {
  HandleBuffer buffer{};
  buffer.header.handle_bytes = MAX_HANDLE_SZ;
  int at = -1;
  return name_to_handle_at(fd, "", &buffer.header, &at, AT_EMPTY_PATH) == 0 ? at : -1;
}

UniqueFd FileHandle::open(int mount_fd, int flags) const {
  // open_by_handle_at only reads the handle, though its prototype says otherwise.
  auto* handle = reinterpret_cast<file_handle*>(const_cast<unsigned char*>(bytes_.data()));
  return UniqueFd(open_by_handle_at(mount_fd, handle, flags));
}

}  // namespace digestfs
