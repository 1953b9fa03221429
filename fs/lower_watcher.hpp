// The kernel may cache names, attributes and missing names for as long as nothing changes
// beneath the mount: LowerWatcher marks the source's whole filesystem with fanotify
// (FAN_MARK_FILESYSTEM, events named by directory file handle and name) and, for every
// change made by anyone but this daemon (creates, deletes, renames, attribute changes,
// writes), tells the kernel to drop what it caches of that name and that inode. Where
// fanotify cannot be had (no CAP_SYS_ADMIN, a filesystem without file handles) the mount
// keeps short cache timeouts instead.
#pragma once

#include <fuse_lowlevel.h>

#include <atomic>
#include <memory>
#include <thread>

#include "fs/node_table.hpp"
#include "src/base/result.hpp"
#include "src/base/unique_fd.hpp"

namespace digestfs::fs {

class LowerWatcher {
 public:
  // source_fd: the source's root (O_PATH), whose filesystem is watched and through which
  // file handles are opened.
  static Result<std::unique_ptr<LowerWatcher>> start(int source_fd, NodeTable& nodes,
                                                     fuse_session* session);
  ~LowerWatcher();
  LowerWatcher(const LowerWatcher&) = delete;
  LowerWatcher& operator=(const LowerWatcher&) = delete;

  // The index changed: every symlink target the kernel keeps (FUSE_CAP_CACHE_SYMLINKS) was
  // judged by the old one. Drops them on the watcher's thread, so that the caller (a reload,
  // which may hold what a readlink being answered waits for) never waits on the kernel.
  void drop_links_soon();

  // Cache entries and inodes the kernel was told to drop.
  const std::atomic<uint64_t>& invalidations() const { return invalidations_; }

 private:
  LowerWatcher(NodeTable& nodes, fuse_session* session) : nodes_(nodes), session_(session) {}
  void run();
  void handle(const char* event, size_t len);
  // Whether the directory is one the mount knows.
  bool drop_entry(const struct file_handle* dir, const char* name);
  void drop_inode(const struct file_handle* object);
  void drop_everything();
  void drop_links();

  UniqueFd source_;  // the source's root opened for reading: open_by_handle_at takes no O_PATH fd
  NodeTable& nodes_;
  fuse_session* session_;
  UniqueFd fanotify_;
  UniqueFd stop_;   // an eventfd: written once to end the thread
  UniqueFd links_;  // an eventfd: written when the symlink targets are to be dropped
  std::atomic<uint64_t> invalidations_{0};
  std::thread thread_;
};

}  // namespace digestfs::fs
