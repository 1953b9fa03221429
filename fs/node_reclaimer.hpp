// Where the lower filesystem gives no file handles, the daemon holds an O_PATH fd per node (and
// everywhere for hard-linked files), and the kernel keeps a node as long as it caches its
// dentry, which it does until memory runs short: a tree with more files than the open-file
// limit (a /usr under a limit the daemon may not raise) would run out of fds. Past a
// high-water mark the reclaimer asks the kernel to drop the entries looked up least recently;
// the kernel forgets those it does not use, and their fds are closed.
#pragma once

#include <fuse_lowlevel.h>

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

#include "fs/node_table.hpp"

namespace digestfs::fs {

class NodeReclaimer {
 public:
  // Keeps the table under `budget` nodes (the fds it may hold), reclaiming from three
  // quarters of it down to one half.
  NodeReclaimer(NodeTable& nodes, fuse_session* session, size_t budget);
  ~NodeReclaimer();
  NodeReclaimer(const NodeReclaimer&) = delete;
  NodeReclaimer& operator=(const NodeReclaimer&) = delete;

  // After a lookup, with how many nodes hold fds: wakes the reclaimer past the high-water mark.
  void note(size_t nodes) {
    if (nodes > high_water_) wake();
  }

 private:
  void wake();
  void run();

  NodeTable& nodes_;
  fuse_session* session_;
  const size_t high_water_;
  const size_t low_water_;
  std::mutex mutex_;
  std::condition_variable wakeup_;
  bool pending_ = false;  // guarded by mutex_
  bool stop_ = false;     // guarded by mutex_
  std::thread thread_;
};

}  // namespace digestfs::fs
