// The FUSE layer's nodes: one per lower file the kernel knows, each owning an O_PATH fd so
// that every lower operation is fd-relative (the mount may hide its own source).
// A regular file with several hard links gets one node per path: integrity is path-bound,
// and the O_PATH fd of each node names the path it was looked up through.
#pragma once

#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "src/base/content_stamp.hpp"
#include "src/base/unique_fd.hpp"

namespace digestfs::fs {

struct Node {
  UniqueFd fd;  // O_PATH | O_NOFOLLOW
  dev_t dev = 0;
  ino_t ino = 0;
  uint64_t nlookup = 0;  // guarded by NodeTable's mutex
  // Where the kernel first looked it up, so that it can be asked to drop the entry
  // (NodeReclaimer); and when it was last looked up, and asked, in NodeTable's lookup count.
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

class NodeTable {
 public:
  explicit NodeTable(UniqueFd root_fd);

  Node& root() { return root_; }
  Node& node(fuse_ino_t ino);
  fuse_ino_t id(const Node& n) const;

  // Finds or adds the node for `fd` (just opened as parent/name) and counts one lookup.
  // Takes ownership of fd when a new node is made.
  Node& remember(UniqueFd fd, const struct stat& st, const Node& parent, const std::string& name);
  void forget(fuse_ino_t ino, uint64_t n);

  size_t size() const { return size_.load(std::memory_order_relaxed); }
  // An entry as the kernel knows it: the name in its parent node.
  struct Entry {
    fuse_ino_t parent;
    uint64_t parent_serial;
    std::string name;
  };
  // Up to `n` entries of the nodes looked up least recently and not since the last time they
  // were picked; never the root.
  std::vector<Entry> least_recent(size_t n);
  // Whether the entry's parent is still the node it was (a forgotten node's id is reused).
  bool parent_known(const Entry& e);
  // The ids of the nodes of one lower inode (several for a hard-linked file, one per path).
  std::vector<fuse_ino_t> ids_of(dev_t dev, ino_t ino);
  // Every node's id and entry: what the kernel may cache, all of it.
  std::vector<std::pair<fuse_ino_t, Entry>> all();

 private:
  bool known(const Entry& e) const;                          // with mutex_ held
  using Key = std::tuple<dev_t, ino_t, ino_t, std::string>;  // parent and name: links only
  Node root_;
  std::mutex mutex_;  // lock order: taken alone; never while holding a Node's served_mutex
  std::map<Key, std::unique_ptr<Node>> nodes_;
  std::map<const Node*, Key> keys_;
  uint64_t lookups_ = 0;  // guarded by mutex_
  uint64_t serials_ = 0;  // guarded by mutex_
  std::atomic<size_t> size_{0};
};

}  // namespace digestfs::fs
