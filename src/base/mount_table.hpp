// What /proc/self/mountinfo says is mounted where.
#pragma once

#include <string>

namespace digestfs {

// The file system type ("fuse.digestfs", "ext4", ...) of the topmost mount at `path` (an
// absolute, normalized path), or "" when nothing is mounted there.
std::string mounted_type(const std::string& path);

}  // namespace digestfs
