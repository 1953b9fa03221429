// A kernel file handle (name_to_handle_at), kept in place of an open fd: a handle costs no
// file descriptor, so a node table can name a whole distribution's files under any fd limit.
// Handles are connectable: an fd opened from one has the file's real path in /proc (the
// kernel reconnects it to its directory, or the open fails), which path-bound checks read.
#pragma once

#include <fcntl.h>

#include <optional>
#include <vector>

#include "src/base/unique_fd.hpp"

namespace digestfs {

class FileHandle {
 public:
  // The handle of `name` under `dir` (the object itself, a symlink not followed), if it lies
  // on the mount `mount_id` names; nullopt with errno set otherwise (EXDEV: another mount;
  // EOPNOTSUPP or EINVAL: no connectable handles on this filesystem or kernel).
  static std::optional<FileHandle> of(int dir, const char* name, int mount_id);
  // The mount id of the file `fd` names, or -1 with errno set.
  static int mount_id_of(int fd);

  // Opens the file with `flags` through `mount_fd` (an fd, not O_PATH, on the same mount).
  UniqueFd open(int mount_fd, int flags) const;

  bool operator==(const FileHandle&) const = default;

 private:
  std::vector<unsigned char> bytes_;  // a struct file_handle, its f_handle included
};

}  // namespace digestfs
