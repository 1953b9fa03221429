// The lower fds of verified files, kept open after their handles close, so that opening such a
// file again for reading costs neither a lower open nor a judgement: one fstat shows that it
// is still the version verified, with one link. What is trusted is a path, and a rename above
// a file changes its path but not its stamp; so fds are kept only while the source is
// watched, and every rename (one the watcher reports beneath the mount, or one made through
// it) drops them all. A verdict that may no longer hold (MountCore::verdict_epoch) is never
// reused either. At most `capacity` are kept, the oldest dropped first; each pins its lower
// inode (and, with block checks, its block tree) until it is dropped or its node forgotten.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>

#include "src/base/content_stamp.hpp"
#include "src/base/unique_fd.hpp"
#include "src/daemon/mount_core.hpp"

namespace digestfs::fs {

struct Node;

struct WarmOpen {
  std::shared_ptr<const UniqueFd> fd;   // opened for reading only
  ContentStamp stamp;                   // the version that was verified
  std::shared_ptr<ContentGuard> guard;  // as the open's decision had it
  uint64_t verdicts = 0;                // MountCore::verdict_epoch() before it was judged
  uint64_t renames = 0;                 // WarmOpens::renames() before it was opened
};

class WarmOpens {
 public:
  // 0 (the default) keeps none. Set before the session answers requests.
  void set_capacity(size_t capacity) { capacity_ = capacity; }
  bool on() const { return capacity_ > 0; }

  // What an open of `n` may reuse: a copy of what is kept, which the caller still checks
  // against the file's fstat and the core's verdict epoch.
  std::shared_ptr<const WarmOpen> find(Node& n);
  // Keeps `w` for `n`, unless a rename was seen since w.renames.
  void keep(Node& n, WarmOpen w);
  // The file of `n` changed behind the mount, or `n` is about to be destroyed.
  void drop(Node& n);
  // Something was renamed: any path may now name other content.
  void drop_all();

  // How many renames were seen: taken before an open, so that keep() can tell.
  uint64_t renames() const { return renames_.load(); }
  // How many are kept, as status reads it while the mount runs.
  const std::atomic<size_t>& size_counter() const { return size_; }

 private:
  void unlist(Node& n);  // with mutex_ held

  size_t capacity_ = 0;
  // Lock order: mutex_, then a Node's fd_mutex.
  std::mutex mutex_;
  std::list<Node*> kept_;             // oldest first; guarded by mutex_
  std::atomic<uint64_t> renames_{0};  // changed with mutex_ held
  std::atomic<size_t> size_{0};       // kept_.size(), changed with mutex_ held
};

}  // namespace digestfs::fs
