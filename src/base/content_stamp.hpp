// What identifies one version of a file's content. ctime is in it because mtime can be put
// back with touch -r; ctime cannot be set from userspace.
#pragma once

#include <sys/stat.h>

#include <cstdint>

namespace digestfs {

struct ContentStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  bool operator==(const ContentStamp&) const = default;
};

inline ContentStamp stamp_of(const struct stat& st) {
  return ContentStamp{st.st_dev, st.st_ino, st.st_size,
                      st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                      st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec};
}

}  // namespace digestfs
