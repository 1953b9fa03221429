#include "src/daemon/read_ahead.hpp"

#include <filesystem>
#include <fstream>

#include "src/base/mount_table.hpp"

namespace digestfs {

Result<void> set_read_ahead(const std::string& mountpoint, unsigned kib) {
  // Found in the mount table, not by a stat: the mount cannot answer until its loop runs.
  std::string path = std::filesystem::absolute(mountpoint).lexically_normal().string();
  if (path.size() > 1 && path.ends_with('/')) path.pop_back();
  const auto mount = topmost_mount(path);
  if (!mount || mount->type != "fuse.digestfs") {
    return Error{ENOENT, "no digestfs mount on " + path + " to set the read-ahead of"};
  }
  const std::string knob = "/sys/class/bdi/" + mount->device + "/read_ahead_kb";
  std::ofstream out(knob);
  out << kib << '\n';
  out.flush();
  if (!out) return errno_error("setting the read-ahead in " + knob);
  return {};
}

}  // namespace digestfs
