// The FUSE layer's nodes: one per lower file the kernel knows, each owning an O_PATH fd so
// that every lower operation is fd-relative (the mount may hide its own source).
// A regular file with several hard links gets one node per path: integrity is path-bound,
// and the O_PATH fd of each node names the path it was looked up through.
#pragma once

#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "cache/verdict_memo.hpp"
#include "src/unique_fd.hpp"

namespace digestfs::fs {

struct Node {
  UniqueFd fd;  // O_PATH | O_NOFOLLOW
  dev_t dev = 0;
  ino_t ino = 0;
  uint64_t nlookup = 0;  // guarded by NodeTable's mutex
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
  Node& remember(UniqueFd fd, const struct stat& st, ino_t parent_ino, const std::string& name);
  void forget(fuse_ino_t ino, uint64_t n);

 private:
  using Key = std::tuple<dev_t, ino_t, ino_t, std::string>;  // parent and name: links only
  Node root_;
  std::mutex mutex_;  // lock order: taken alone; never while holding a Node's served_mutex
  std::map<Key, std::unique_ptr<Node>> nodes_;
  std::map<const Node*, Key> keys_;
};

}  // namespace digestfs::fs
