#include "fs/lower_watcher.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "src/base/proc_path.hpp"
#include "src/base/thread_name.hpp"

namespace digestfs::fs {
namespace {

// Everything that can change a name, an attribute or the content under the mount.
constexpr uint64_t kChanges = FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_ATTRIB |
                              FAN_MODIFY | FAN_CLOSE_WRITE | FAN_DELETE_SELF | FAN_MOVE_SELF |
                              FAN_ONDIR;

// The inode a file handle names (its stat); none when it is gone or not on our side.
std::optional<struct stat> inode_of(int source_fd, const struct file_handle* h) {
  UniqueFd fd(open_by_handle_at(source_fd, const_cast<struct file_handle*>(h),
                                O_PATH | O_CLOEXEC | O_NOFOLLOW));
  struct stat st;
  if (!fd || fstat(fd.get(), &st) != 0) return std::nullopt;
  return st;
}

}  // namespace

Result<std::unique_ptr<LowerWatcher>> LowerWatcher::start(int source_fd, NodeTable& nodes,
                                                          fuse_session* session) {
  std::unique_ptr<LowerWatcher> w(new LowerWatcher(nodes, session));
  const std::string source = proc_path(source_fd);
  w->source_.reset(open(source.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!w->source_) return errno_error("the source's root");
  // FID records name the object, DFID_NAME its directory and name: both are needed to drop
  // an entry (directory + name) and an inode (its attributes and pages).
  w->fanotify_.reset(fanotify_init(
      FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_REPORT_FID | FAN_CLOEXEC | FAN_NONBLOCK,
      O_RDONLY | O_CLOEXEC));
  if (!w->fanotify_) return errno_error("fanotify_init");
  if (fanotify_mark(w->fanotify_.get(), FAN_MARK_ADD | FAN_MARK_FILESYSTEM, kChanges, AT_FDCWD,
                    source.c_str()) != 0) {
    return errno_error("fanotify_mark of the source's filesystem");
  }
  w->stop_.reset(eventfd(0, EFD_CLOEXEC));
  w->links_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!w->stop_ || !w->links_) return errno_error("eventfd");
  w->thread_ = named_thread("dfs-watcher", [p = w.get()] { p->run(); });
  return w;
}

LowerWatcher::~LowerWatcher() {
  const uint64_t one = 1;
  if (thread_.joinable()) {
    if (write(stop_.get(), &one, sizeof one) == sizeof one) {
      thread_.join();
    } else {
      // The thread cannot be told to end: it stays blocked in poll, so it may not be joined.
      thread_.detach();
    }
  }
}

void LowerWatcher::run() {
  alignas(fanotify_event_metadata) char buffer[64 * 1024];
  for (;;) {
    pollfd fds[3] = {
        {fanotify_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}, {links_.get(), POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) {
      // Only EINTR or a short lack of memory: stopping here would leave the kernel caching
      // for a day with nobody to tell it of changes, so the watcher tries again.
      if (errno != EINTR) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (fds[1].revents) return;
    uint64_t requests;
    if (fds[2].revents && read(links_.get(), &requests, sizeof requests) == sizeof requests) {
      drop_links();
    }
    for (;;) {
      const ssize_t n = read(fanotify_.get(), buffer, sizeof buffer);
      if (n <= 0) break;
      size_t left = static_cast<size_t>(n);
      for (auto* m = reinterpret_cast<fanotify_event_metadata*>(buffer); FAN_EVENT_OK(m, left);
           m = FAN_EVENT_NEXT(m, left)) {
        handle(reinterpret_cast<const char*>(m), m->event_len);
      }
    }
  }
}

void LowerWatcher::drop_links_soon() {
  const uint64_t one = 1;
  // Cannot fail but by overflowing the counter, and then a drop is pending anyway.
  [[maybe_unused]] const ssize_t written = write(links_.get(), &one, sizeof one);
}

void LowerWatcher::drop_links() {
  for (const fuse_ino_t ino : nodes_.links()) {
    fuse_lowlevel_notify_inval_inode(session_, ino, 0, 0);
    ++invalidations_;
  }
}

void LowerWatcher::handle(const char* event, size_t len) {
  const auto* m = reinterpret_cast<const fanotify_event_metadata*>(event);
  if (m->mask & FAN_Q_OVERFLOW) {
    // Events were lost: nothing the kernel caches can be trusted to be current.
    drop_everything();
    return;
  }
  // What this daemon does itself (writes, creates through the mount) the kernel saw happen.
  if (m->pid == getpid()) return;
  bool known_parent = false;
  for (size_t at = m->metadata_len; at + sizeof(fanotify_event_info_header) <= len;) {
    const auto* info = reinterpret_cast<const fanotify_event_info_fid*>(event + at);
    if (info->hdr.len == 0 || at + info->hdr.len > len) break;
    const auto* handle = reinterpret_cast<const struct file_handle*>(info->handle);
    if (info->hdr.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
      const char* name = reinterpret_cast<const char*>(handle->f_handle) + handle->handle_bytes;
      known_parent |= drop_entry(handle, name);
    } else if (info->hdr.info_type == FAN_EVENT_INFO_TYPE_FID) {
      drop_inode(handle);
    }
    at += info->hdr.len;
  }
  // A directory the mount knows moved: the symlinks beneath it, whose targets the kernel may
  // keep (it may keep their inodes too), were judged at paths they no longer have.
  const bool moved = known_parent && (m->mask & (FAN_MOVED_FROM | FAN_MOVED_TO));
  if (moved && (m->mask & FAN_ONDIR)) drop_links();
  // A rename may give a path another file, or a directory's files other paths, with no
  // change to any file's stamp: no kept fd may answer an open by what its path used to be.
  if (moved) nodes_.warm().drop_all();
}

bool LowerWatcher::drop_entry(const struct file_handle* dir, const char* name) {
  const auto st = inode_of(source_.get(), dir);
  const std::vector<fuse_ino_t> parents =
      st ? nodes_.ids_of(st->st_dev, st->st_ino) : std::vector<fuse_ino_t>();
  for (const fuse_ino_t parent : parents) {
    // The directory itself changed too: its times, its link count and the listing the
    // kernel keeps (dropping the entry alone drops nothing for a name it never looked up).
    fuse_lowlevel_notify_inval_inode(session_, parent, 0, 0);
    fuse_lowlevel_notify_inval_entry(session_, parent, name, std::strlen(name));
    ++invalidations_;
  }
  return !parents.empty();
}

void LowerWatcher::drop_inode(const struct file_handle* object) {
  const auto st = inode_of(source_.get(), object);
  if (!st) return;
  for (const fuse_ino_t ino : nodes_.changed(st->st_dev, st->st_ino)) {
    fuse_lowlevel_notify_inval_inode(session_, ino, 0, 0);
    ++invalidations_;
  }
}

void LowerWatcher::drop_everything() {
  nodes_.warm().drop_all();
  fuse_lowlevel_notify_inval_inode(session_, FUSE_ROOT_ID, 0, 0);
  for (const auto& [ino, entry] : nodes_.all()) {
    fuse_lowlevel_notify_inval_inode(session_, ino, 0, 0);
    if (nodes_.parent_known(entry)) {
      fuse_lowlevel_notify_inval_entry(session_, entry.parent, entry.name.c_str(),
                                       entry.name.size());
    }
  }
}

}  // namespace digestfs::fs
