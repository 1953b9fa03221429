#include "src/daemon/dead_mount.hpp"

#include <sys/mount.h>
#include <sys/vfs.h>

#include <filesystem>

#include "src/base/mount_table.hpp"

namespace digestfs {

Result<bool> detach_dead_mount(const std::string& mountpoint) {
  // statfs always reaches the daemon; stat may be answered from cached attributes.
  struct statfs st;
  if (statfs(mountpoint.c_str(), &st) == 0 || errno != ENOTCONN) return false;
  std::string path = std::filesystem::absolute(mountpoint).lexically_normal().string();
  if (path.size() > 1 && path.ends_with('/')) path.pop_back();
  const std::string type = mounted_type(path);
  if (type != "fuse.digestfs") {
    return Error{ENOTCONN, "mount point " + path + " is a dead " +
                               (type.empty() ? "mount" : type + " mount") + ", not digestfs's"};
  }
  if (umount2(path.c_str(), MNT_DETACH) != 0) return errno_error("detaching " + path);
  return true;
}

}  // namespace digestfs
