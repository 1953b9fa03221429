// The FUSE layer's nodes: one per lower file the kernel knows. Every lower operation is
// relative to a node (the mount may hide its own source), reached through the node's file
// handle where the filesystem has connectable ones, so that a tree of any size costs no fds;
// else through an O_PATH fd the node owns.
// A regular file or symlink with several hard links gets one node per path: integrity is
// path-bound, and each such node keeps the O_PATH fd of the path it was looked up through (a
// handle names the inode, and an fd opened from it could show any of its paths).
#pragma once

#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "fs/warm_opens.hpp"
#include "src/base/content_stamp.hpp"
#include "src/base/file_handle.hpp"
#include "src/base/unique_fd.hpp"

namespace digestfs::fs {

struct Node {
  std::optional<FileHandle> handle;  // set once, when the node is made
  // The node's own fd (O_PATH | O_NOFOLLOW) when it has no handle; else, while the file is
  // open through the mount, the fd of one open handle: a file removed while open has no handle
  // that still opens, and fstat of it must still answer.
  std::mutex fd_mutex;
  std::shared_ptr<const UniqueFd> fd;  // guarded by fd_mutex
  unsigned holds = 0;                  // guarded by fd_mutex: open handles standing in
  // Guarded by fd_mutex, and changed with WarmOpens' mutex held too: see WarmOpens.
  std::shared_ptr<const WarmOpen> warm;
  // Which of WarmOpens' lists the node is in, and where: both guarded by WarmOpens' mutex.
  std::list<Node*>::iterator warm_at;
  WarmList warm_in = WarmList::None;
  dev_t dev = 0;
  ino_t ino = 0;
  bool link = false;     // a symlink, whose target the kernel may keep (see LowerWatcher)
  uint64_t nlookup = 0;  // guarded by NodeTable's mutex
  // Where the kernel last looked it up, so that it can be asked to drop the entry
  // (NodeReclaimer), guarded by NodeTable's mutex; and when it was last looked up, and asked,
  // in NodeTable's lookup count.
  fuse_ino_t parent = 0;
  uint64_t parent_serial = 0;  // the parent's serial: a node id is reused once forgotten
  uint64_t serial = 0;
  std::string name;
  uint64_t last_lookup = 0;    // guarded by NodeTable's mutex
  uint64_t reclaim_asked = 0;  // guarded by NodeTable's mutex
  // Guards the page-cache bookkeeping below. Bytes written through a cached handle land in
  // the kernel's page cache, where a verified reader's reads would find them without the
  // daemon's check; so writers and verified readers of one node never share that cache.
  std::mutex served_mutex;
  ContentStamp served;            // the version whose pages the kernel may still cache
  unsigned cached_writers = 0;    // open handles that write through the page cache
  unsigned verified_readers = 0;  // open handles whose reads must be of the verified version
};

static_assert(sizeof(fuse_ino_t) >= sizeof(Node*), "a node pointer must fit in fuse_ino_t");

// A node's O_PATH fd for the length of one operation: its own, or one opened from its handle.
class NodeFd {
 public:
  NodeFd() = default;
  explicit NodeFd(std::shared_ptr<const UniqueFd> fd) : fd_(std::move(fd)) {}
  int get() const { return fd_ ? fd_->get() : -1; }
  explicit operator bool() const { return fd_ && fd_->valid(); }

 private:
  std::shared_ptr<const UniqueFd> fd_;
};

class NodeTable {
 public:
  // by_handle: keep nodes as file handles where the kernel and filesystem give them.
  NodeTable(UniqueFd root_fd, bool by_handle);

  Node& root() { return root_; }
  int root_fd() const { return root_fd_->get(); }
  Node& node(fuse_ino_t ino);
  fuse_ino_t id(const Node& n) const;
  // Whether nodes are kept as file handles (else each holds an fd).
  bool by_handle() const { return handles_root_.valid(); }
  // The fds kept for reopening verified files; a node's is dropped before the node goes.
  WarmOpens& warm() { return warm_; }

  // Looks `name` up under `parent` (parent_fd its NodeFd), fills st, and finds or adds its
  // node, counting one lookup; nullptr with errno set when there is no such file.
  Node* look_up(const Node& parent, int parent_fd, const char* name, struct stat& st);
  void forget(fuse_ino_t ino, uint64_t n);

  // The node's O_PATH fd for one operation; empty with errno set (ESTALE: the file is gone).
  NodeFd path_fd(Node& n);
  // Opens the node's file with `flags` (O_NOFOLLOW aside: the node is never a symlink here).
  UniqueFd open(Node& n, int flags);
  // Whether an fd opened from the node names the path the node was looked up through: not when
  // a handle opened a file that has gained links since (the kernel may pick any of its paths).
  bool names_its_path(Node& n, const struct stat& st);
  // While a handle of the node is open, that handle's fd stands in for the node's.
  void hold(Node& n, std::shared_ptr<const UniqueFd> open_fd);
  void let_go(Node& n);

  size_t size() const { return size_.load(std::memory_order_relaxed); }
  // How many nodes own an fd: what the reclaimer must keep under the open-file limit.
  size_t fds() const { return fds_.load(std::memory_order_relaxed); }
  // The same two, as status reads them while the mount runs.
  const std::atomic<size_t>& size_counter() const { return size_; }
  const std::atomic<size_t>& fds_counter() const { return fds_; }
  // How many lookups have found a directory or a symlink under another directory or name
  // (see remember).
  uint64_t moves() const { return moves_.load(std::memory_order_relaxed); }
  // An entry as the kernel knows it: the name in its parent node.
  struct Entry {
    fuse_ino_t parent;
    uint64_t parent_serial;
    std::string name;
  };
  // Up to `n` entries of the nodes that hold fds, looked up least recently and not since the
  // last time they were picked; never the root.
  std::vector<Entry> least_recent(size_t n);
  // Whether the entry's parent is still the node it was (a forgotten node's id is reused).
  bool parent_known(const Entry& e);
  // The ids of the nodes of one lower inode (several for a hard-linked file, one per path).
  std::vector<fuse_ino_t> ids_of(dev_t dev, ino_t ino);
  // The same, for an inode changed behind the mount: the fds kept for them are dropped (while
  // they cannot be forgotten).
  std::vector<fuse_ino_t> changed(dev_t dev, ino_t ino);
  // The ids of the nodes that are symlinks.
  std::vector<fuse_ino_t> links();
  // Every node's id and entry: what the kernel may cache, all of it.
  std::vector<std::pair<fuse_ino_t, Entry>> all();

 private:
  bool known(const Entry& e) const;                          // with mutex_ held
  using Key = std::tuple<dev_t, ino_t, ino_t, std::string>;  // parent and name: links only
  Node& remember(UniqueFd fd, std::optional<FileHandle> handle, const struct stat& st,
                 const Node& parent, const std::string& name);
  // With mutex_ held: moves the node at `key` aside when its file is gone and `handle` names
  // the new file that has its inode number.
  void retire_if_gone(const Key& key, const FileHandle& handle);
  std::vector<fuse_ino_t> nodes_of(dev_t dev, ino_t ino, bool drop_kept);
  Node root_;
  std::shared_ptr<const UniqueFd> root_fd_;
  UniqueFd handles_root_;  // the source's root opened for reading: handles open through it
  int mount_id_ = -1;      // the source's mount: handles of other mounts are not kept
  std::mutex mutex_;       // lock order: before WarmOpens' own; never with a Node's mutex held
  std::map<Key, std::unique_ptr<Node>> nodes_;
  std::map<const Node*, Key> keys_;
  uint64_t lookups_ = 0;  // guarded by mutex_
  uint64_t serials_ = 0;  // guarded by mutex_
  std::atomic<size_t> size_{0};
  std::atomic<size_t> fds_{0};
  std::atomic<uint64_t> moves_{0};
  WarmOpens warm_;
};

}  // namespace digestfs::fs
