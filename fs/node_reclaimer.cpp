#include "fs/node_reclaimer.hpp"

#include "src/base/thread_name.hpp"

namespace digestfs::fs {

NodeReclaimer::NodeReclaimer(NodeTable& nodes, fuse_session* session, size_t budget)
    : nodes_(nodes),
      session_(session),
      high_water_(budget / 4 * 3),
      low_water_(budget / 2),
      thread_(named_thread("dfs-reclaimer", [this] { run(); })) {}

NodeReclaimer::~NodeReclaimer() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wakeup_.notify_one();
  thread_.join();
}

void NodeReclaimer::wake() {
  {
    std::lock_guard lock(mutex_);
    if (pending_) return;
    pending_ = true;
  }
  wakeup_.notify_one();
}

void NodeReclaimer::run() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wakeup_.wait(lock, [this] { return pending_ || stop_; });
      if (stop_) return;
      pending_ = false;
    }
    const size_t fds = nodes_.fds();
    if (fds <= low_water_) continue;
    // From this thread, never from an operation's: the kernel takes the parent directory's
    // lock to drop an entry, which a lookup in flight may hold. Dropping a directory drops
    // what the kernel caches below it, so a parent is checked again just before its entries
    // are named; an entry the kernel no longer has (ENOENT) is simply gone already.
    for (const auto& e : nodes_.least_recent(fds - low_water_)) {
      if (nodes_.parent_known(e)) {
        fuse_lowlevel_notify_inval_entry(session_, e.parent, e.name.c_str(), e.name.size());
      }
    }
  }
}

}  // namespace digestfs::fs
