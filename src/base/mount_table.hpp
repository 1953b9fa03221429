// What /proc/self/mountinfo says is mounted where.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace digestfs {

struct MountEntry {
  unsigned long id = 0, parent = 0;
  std::string device;  // "MAJOR:MINOR" of the filesystem
  std::string root;    // what of the filesystem is mounted (a bind's subtree)
  std::string point;   // where, unescaped
  std::string type;    // "fuse.digestfs", "ext4", ...
  std::string source;  // what was mounted, as its mounter named it (a FUSE fsname)
};

// `path` as the mount table names a mount there: absolute, without "." or ".." and without a
// trailing slash, its directory resolved; the last component is taken as named, since a dead
// mount there cannot be resolved.
std::string mount_path(const std::string& path);

// Every mount, in the order the kernel lists them (a mount after those it covers).
std::vector<MountEntry> mounts();

// The topmost mount at `path` (an absolute, normalized path): the last one listed there.
std::optional<MountEntry> topmost_mount(const std::string& path);

// Its filesystem type, or "" when nothing is mounted at `path`.
std::string mounted_type(const std::string& path);

}  // namespace digestfs
