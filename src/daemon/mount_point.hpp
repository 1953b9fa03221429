// MountPoint: where the mount goes, how the source stays reachable, and how a new daemon
// replaces the mount that is there without a moment in which the bare source shows.
//
// Over its own source (digestfs /usr /usr), the source is reached through a private bind of
// it made before the first mount, at /run/digestfs/<mount point, escaped>/source, which a
// restarted daemon finds again. A new daemon loads its index first, then mounts its instance
// beneath the digestfs mount already there (dead or alive; MOVE_MOUNT_BENEATH) and detaches
// that one: at every instant a reader finds the old mount (failing closed, or serving) or the
// new one. A daemon told to stop (SIGTERM) leaves its mount failing closed for its successor;
// only an unmount, or SIGINT in the foreground, takes the mount away.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "src/base/result.hpp"
#include "src/base/unique_fd.hpp"

namespace digestfs {

class EventLog;

// What the generic -o options ask of the kernel.
struct KernelOptions {
  bool read_only = false;
  uint64_t mount_attributes = 0;      // MOUNT_ATTR_* of the mount
  std::vector<std::string> sb_flags;  // superblock flags for fsconfig ("sync", "dirsync")
  bool allow_other = false;
};
Result<KernelOptions> kernel_options(const std::vector<std::string>& names);

class MountPoint {
 public:
  // How the daemon's loop ended, and so what to leave behind.
  enum class Ending {
    Unmounted,  // unmounted (or replaced) by someone else
    Stop,       // SIGTERM: leave the mount failing closed for a successor
    Interrupt,  // SIGINT: take the mount away
  };

  // Finds the source: directly, or through the backing bind when the mount point hides it
  // (made now if there is none yet).
  static Result<MountPoint> prepare(const std::string& source, const std::string& mountpoint,
                                    EventLog& log);
  MountPoint(MountPoint&&) = default;
  MountPoint& operator=(MountPoint&&) = delete;

  // The source directory (O_PATH), the path its files read as through /proc/self/fd, and the
  // path the administrator named (what the index knows it as).
  UniqueFd take_source_fd() { return std::move(source_fd_); }
  const std::string& source_path() const { return source_path_; }
  const std::string& source_named() const { return source_named_; }
  const std::string& path() const { return mountpoint_; }
  // The path by which this daemon reaches `p` once mounted: through the bind when p lies in
  // the source that the mount hides (the database of a rootfs mounted over itself), where
  // through the mount the daemon's own reads would be judged, or meet a dead mount.
  std::filesystem::path reach(const std::filesystem::path& p) const;

  // Mounts a FUSE instance that speaks through fuse_fd, named by the source's path (as
  // source_named): beneath a digestfs mount already on the mount point, which is then
  // detached, or on the bare mount point.
  Result<void> attach(int fuse_fd, const KernelOptions& options);
  // "MAJOR:MINOR" of the mounted instance (its read-ahead lives there in sysfs).
  const std::string& device() const { return device_; }
  // The kernel's switch that ends the mounted instance's connection whatever still holds its
  // /dev/fuse file (a thread blocked writing to it does): the abort file of fusectl, mounted
  // detached, nowhere in the tree. Opened once mounted, while fds are to be had; empty with
  // errno set when it cannot be.
  UniqueFd connection_abort() const;
  void leave(Ending how);

 private:
  MountPoint(EventLog& log) : log_(log) {}
  // Whether the mount this daemon made is still the topmost one on the mount point.
  bool ours_on_top() const;
  void remove_backing();

  EventLog& log_;
  std::string mountpoint_;
  std::string source_named_;
  std::string source_path_;
  std::string state_dir_;  // empty: the source is reached directly
  UniqueFd source_fd_;
  uint64_t mount_id_ = 0;
  std::string device_;
};

}  // namespace digestfs
