#include "src/dead_mount.hpp"

#include <sys/mount.h>
#include <sys/vfs.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace digestfs {
namespace {

// /proc/self/mountinfo writes space, tab, newline and backslash as \ooo.
std::string unescape(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && std::isdigit(field[i + 1])) {
      out += static_cast<char>(std::stoi(field.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

// The file system type of the topmost mount at `path`, or "" when nothing is mounted there.
std::string mounted_type(const std::string& path) {
  std::ifstream info("/proc/self/mountinfo");
  std::string type;
  for (std::string line; std::getline(info, line);) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
    if (unescape(point) != path) continue;
    for (std::string f; fields >> f;) {
      if (f == "-") {
        fields >> type;
        break;
      }
    }
  }
  return type;
}

}  // namespace

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
