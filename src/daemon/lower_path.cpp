#include "src/daemon/lower_path.hpp"

#include <limits.h>
#include <unistd.h>

namespace digestfs {

std::string index_path_of(int fd, const PathMapping& mapping) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char buf[PATH_MAX];
  ssize_t n = readlink(link, buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string path(buf, static_cast<size_t>(n));
  if (path.ends_with(" (deleted)")) return {};
  std::string rel;
  if (mapping.source == "/") {
    rel = path;
  } else if (path == mapping.source) {
    rel = "";
  } else if (path.starts_with(mapping.source) && path[mapping.source.size()] == '/') {
    rel = path.substr(mapping.source.size());
  } else {
    return {};
  }
  std::string prefix = mapping.prefix;
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  if (prefix == "/") return rel.empty() ? "/" : rel;
  return prefix + rel;
}

}  // namespace digestfs
