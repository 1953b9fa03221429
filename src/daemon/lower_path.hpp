// Maps a lower fd to the absolute path its file stands for in the index. The kernel names an
// fd's file by its current path, so renames and hard links are judged by where the file is.
#pragma once

#include <string>

namespace digestfs {

struct PathMapping {
  std::string source;  // the source directory's path, read before mounting over it
  std::string prefix;  // what source stands for in the index ("/usr" for /usr over /usr)
};

// Empty when the fd's file is no longer reachable under the source (deleted, moved away).
std::string index_path_of(int fd, const PathMapping& mapping);

}  // namespace digestfs
