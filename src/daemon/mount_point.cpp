#include "src/daemon/mount_point.hpp"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "src/base/mount_table.hpp"
#include "src/daemon/event_log.hpp"

#ifndef MOVE_MOUNT_BENEATH
#define MOVE_MOUNT_BENEATH 0x00000200  // Linux 6.5; not yet in this system's headers
#endif

namespace digestfs {
namespace {

constexpr const char* kStateRoot = "/run/digestfs";

// As systemd-escape --path names a path: "/" is "-", "/usr/lib" is "usr-lib".
std::string escaped(const std::string& path) {
  if (path == "/") return "-";
  std::string out;
  for (char c : path.substr(1)) {
    if (c == '/') {
      out += '-';
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == ':') {
      out += c;
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(c));
      out += hex;
    }
  }
  return out;
}

std::string read_text(const std::string& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<void> make_private_dir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return errno_error("making " + dir);
  return {};
}

}  // namespace

Result<KernelOptions> kernel_options(const std::vector<std::string>& names) {
  static const std::map<std::string, uint64_t> attributes = {
      {"nosuid", MOUNT_ATTR_NOSUID},     {"nodev", MOUNT_ATTR_NODEV},
      {"noexec", MOUNT_ATTR_NOEXEC},     {"noatime", MOUNT_ATTR_NOATIME},
      {"relatime", MOUNT_ATTR_RELATIME}, {"atime", MOUNT_ATTR_STRICTATIME}};
  KernelOptions out;
  out.allow_other = geteuid() == 0;
  for (const auto& name : names) {
    if (auto a = attributes.find(name); a != attributes.end()) {
      out.mount_attributes |= a->second;
    } else if (name == "ro") {
      out.read_only = true;
    } else if (name == "rw") {
      out.read_only = false;
    } else if (name == "sync" || name == "dirsync") {
      out.sb_flags.push_back(name);
    } else if (name == "allow_other") {
      out.allow_other = true;
    } else if (name == "auto_unmount") {
      return Error{EINVAL,
                   "auto_unmount would take the mount away when the daemon dies and show the "
                   "unverified source: digestfs fails closed instead"};
    }
    // suid, dev, exec, async, default_permissions: what the mount is anyway.
  }
  if (out.read_only) out.mount_attributes |= MOUNT_ATTR_RDONLY;
  return out;
}

Result<MountPoint> MountPoint::prepare(const std::string& source, const std::string& mountpoint,
                                       EventLog& log) {
  MountPoint mp(log);
  mp.mountpoint_ = mount_path(mountpoint);
  mp.source_named_ = mount_path(source);
  const bool hidden = mp.mountpoint_ == "/" || mp.source_named_ == mp.mountpoint_ ||
                      mp.source_named_.starts_with(mp.mountpoint_ + "/");
  if (!hidden) {
    mp.source_fd_.reset(open(mp.source_named_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    char real[PATH_MAX];
    if (!mp.source_fd_ || !realpath(mp.source_named_.c_str(), real)) {
      return errno_error("source " + mp.source_named_);
    }
    mp.source_named_ = mp.source_path_ = real;
    return mp;
  }
  mp.state_dir_ = std::string(kStateRoot) + "/" + escaped(mp.mountpoint_);
  const std::string backing = mp.state_dir_ + "/source";
  const std::string named = mp.state_dir_ + "/source.path";
  const auto bound = topmost_mount(backing);
  if (!bound || read_text(named) != mp.source_named_ + "\n") {
    // The first mount: the source must still be bare here, not under a mount of ours.
    if (const auto top = topmost_mount(mp.mountpoint_); top && top->type == "fuse.digestfs") {
      return Error{EBUSY, "a digestfs mount on " + mp.mountpoint_ +
                              " hides its source, and no bind of the source is kept at " + backing +
                              ": unmount it first"};
    }
    for (const auto& dir : {std::string(kStateRoot), mp.state_dir_, backing}) {
      if (auto made = make_private_dir(dir); !made) return made.error();
    }
    if (bound) umount2(backing.c_str(), MNT_DETACH);  // a bind of another source
    UniqueFd tree(static_cast<int>(open_tree(AT_FDCWD, mp.source_named_.c_str(),
                                             OPEN_TREE_CLONE | AT_RECURSIVE | OPEN_TREE_CLOEXEC)));
    if (!tree) return errno_error("binding " + mp.source_named_);
    if (move_mount(tree.get(), "", AT_FDCWD, backing.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      return errno_error("binding " + mp.source_named_ + " at " + backing);
    }
    // Nothing mounted below it later is to reach the bind, nor the bind anybody else.
    if (mount(nullptr, backing.c_str(), nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      return errno_error("making " + backing + " private");
    }
    std::ofstream(named) << mp.source_named_ << "\n";
    log.notice(LOG_INFO, "the source " + mp.source_named_ + " is reached through " + backing);
  }
  mp.source_fd_.reset(open(backing.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!mp.source_fd_) return errno_error("source " + backing);
  mp.source_path_ = backing;
  return mp;
}

std::filesystem::path MountPoint::reach(const std::filesystem::path& p) const {
  if (state_dir_.empty() || p.empty()) return p;
  // From the root down, each ancestor is named as the source was (mount_path: its directory
  // resolved), so that a path through a symlinked directory is found too. The first that is
  // the source ends the walk: nothing below it is resolved, through a mount that may be dead
  // or another daemon's.
  const std::filesystem::path named = std::filesystem::absolute(p).lexically_normal();
  std::filesystem::path at;
  for (const auto& component : named) {
    at /= component;
    if (mount_path(at.string()) != source_named_) continue;
    const std::filesystem::path below = named.lexically_relative(at);
    return below.empty() || below == "." ? std::filesystem::path(source_path_)
                                         : std::filesystem::path(source_path_) / below;
  }
  return p;
}

Result<void> MountPoint::attach(int fuse_fd, const KernelOptions& options) {
  UniqueFd fs(fsopen("fuse", FSOPEN_CLOEXEC));
  if (!fs) return errno_error("fsopen fuse");
  auto set = [&](const char* key, const std::string& value) {
    return fsconfig(fs.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) == 0;
  };
  auto flag = [&](const char* key) {
    return fsconfig(fs.get(), FSCONFIG_SET_FLAG, key, nullptr, 0) == 0;
  };
  bool ok = set("source", source_named_) && set("subtype", "digestfs") &&
            set("fd", std::to_string(fuse_fd)) && set("rootmode", "40000") &&
            set("user_id", std::to_string(getuid())) && set("group_id", std::to_string(getgid())) &&
            flag("default_permissions") && (!options.allow_other || flag("allow_other")) &&
            (!options.read_only || flag("ro"));
  for (const auto& f : options.sb_flags) ok = ok && flag(f.c_str());
  if (!ok || fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return errno_error("configuring the FUSE mount");
  }
  UniqueFd mnt(fsmount(fs.get(), FSMOUNT_CLOEXEC, static_cast<unsigned>(options.mount_attributes)));
  if (!mnt) return errno_error("fsmount");
  // Without a round trip to this instance: its loop does not run yet.
  struct statx stx {};
  if (statx(mnt.get(), "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID, &stx) != 0) {
    return errno_error("statx of the new mount");
  }
  mount_id_ = stx.stx_mnt_id;
  device_ = std::to_string(stx.stx_dev_major) + ":" + std::to_string(stx.stx_dev_minor);

  const auto top = topmost_mount(mountpoint_);
  if (top && top->type == "fuse.digestfs") {
    if (move_mount(mnt.get(), "", AT_FDCWD, mountpoint_.c_str(),
                   MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_BENEATH) == 0) {
      if (umount2(mountpoint_.c_str(), MNT_DETACH) != 0) {
        return errno_error("detaching the digestfs mount above the new one on " + mountpoint_);
      }
      if (mount_path(top->source) == source_named_) {
        log_.notice(LOG_INFO, "replaced the digestfs mount on " + mountpoint_);
      } else {
        // Not a restart: the tree that programs find there is another one from now on.
        log_.notice(LOG_WARNING, "replaced the digestfs mount on " + mountpoint_ + ", of " +
                                     top->source + ", with one of " + source_named_);
      }
      return {};
    }
    if (errno != EINVAL)
      return errno_error("mounting beneath the digestfs mount on " + mountpoint_);
    // A kernel before 6.5: on top of it; the mount below stays, hidden and unused.
    log_.notice(LOG_WARNING, "this kernel cannot mount beneath: the earlier digestfs mount on " +
                                 mountpoint_ + " stays below the new one");
  }
  if (move_mount(mnt.get(), "", AT_FDCWD, mountpoint_.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return errno_error("mounting on " + mountpoint_);
  }
  return {};
}

UniqueFd MountPoint::connection_abort() const {
  // fusectl names a connection by its device number: an anonymous one's, so its minor.
  const std::string anonymous = "0:";
  if (device_.compare(0, anonymous.size(), anonymous) != 0) {
    errno = ENODEV;
    return {};
  }
  const UniqueFd fs(fsopen("fusectl", FSOPEN_CLOEXEC));
  if (!fs || fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) return {};
  const UniqueFd control(fsmount(fs.get(), FSMOUNT_CLOEXEC, 0));
  if (!control) return {};
  const std::string abort = device_.substr(anonymous.size()) + "/abort";
  return UniqueFd(openat(control.get(), abort.c_str(), O_WRONLY | O_CLOEXEC));
}

bool MountPoint::ours_on_top() const {
  const auto top = topmost_mount(mountpoint_);
  return top && mount_id_ != 0 && top->id == mount_id_;
}

void MountPoint::leave(Ending how) {
  if (mount_id_ == 0) return;  // nothing was mounted
  if (ours_on_top()) {
    if (how == Ending::Stop) {
      log_.notice(LOG_NOTICE, "stopping: the mount on " + mountpoint_ +
                                  " fails every access until a digestfs replaces it or it is "
                                  "unmounted");
      return;
    }
    if (umount2(mountpoint_.c_str(), MNT_DETACH) != 0) {
      log_.notice(LOG_ERR, "cannot unmount " + mountpoint_ + ": " + std::strerror(errno));
      return;
    }
  }
  // Replaced by a successor: the bind of the source is its now.
  if (const auto top = topmost_mount(mountpoint_); top && top->type == "fuse.digestfs") return;
  remove_backing();
}

void MountPoint::remove_backing() {
  if (state_dir_.empty()) return;
  const std::string backing = state_dir_ + "/source";
  source_fd_.reset();
  if (umount2(backing.c_str(), MNT_DETACH) != 0 && errno != EINVAL) {
    log_.notice(LOG_WARNING, "cannot remove the bind at " + backing + ": " + std::strerror(errno));
    return;
  }
  unlink((state_dir_ + "/source.path").c_str());
  rmdir(backing.c_str());
  rmdir(state_dir_.c_str());
}

}  // namespace digestfs
