// The lower fds of verified files, kept open after their handles close, so that opening such a
// file again for reading costs neither a lower open nor a judgement: one fstat shows that it
// is still the version verified, with one link. What is trusted is a path, and a rename above
// a file changes its path but not its stamp; so fds are kept only while the source is
// watched, and every rename (one the watcher reports beneath the mount, or one made through
// it) drops them all. A verdict that may no longer hold (MountCore::verdict_epoch) is never
// reused either. At most `capacity` fds are kept, the oldest closed first; each pins its lower
// inode until it is closed or its node forgotten. A node whose fd was closed past the capacity
// still remembers what was verified (and, with block checks, its block tree): its next open
// costs a lower open and the same fstat, not a path lookup and a judgement (a sweep over more
// files than the capacity opens every one that way). Those verdicts take at most their own
// memory budget, the oldest forgotten first.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <vector>

#include "src/base/content_stamp.hpp"
#include "src/base/unique_fd.hpp"
#include "src/daemon/mount_core.hpp"

namespace digestfs::fs {

struct Node;

enum class WarmList : uint8_t { None, Fds, Verdicts };

struct WarmOpen {
  std::shared_ptr<const UniqueFd> fd;   // opened for reading only; null once closed
  ContentStamp stamp;                   // the version that was verified
  std::shared_ptr<ContentGuard> guard;  // as the open's decision had it
  uint64_t verdicts = 0;                // MountCore::verdict_epoch() before it was judged
  uint64_t renames = 0;                 // WarmOpens::renames() before it was opened
};

class WarmOpens {
 public:
  // How many fds to keep (0, the default, keeps none), and how many bytes the verdicts left
  // without one may take. Set before the session answers requests.
  void set_capacity(size_t fds, size_t verdict_bytes = SIZE_MAX) {
    capacity_ = fds;
    verdict_budget_ = verdict_bytes;
  }
  bool on() const { return capacity_ > 0; }

  // What an open of `n` may reuse (null when a rename was seen since it was kept): a copy,
  // which the caller still checks against the file's fstat and the core's verdict epoch.
  std::shared_ptr<const WarmOpen> find(Node& n);
  // Keeps `w` for `n`, unless a rename was seen since w.renames; past the capacity the oldest
  // fd is closed, its verdict left with its node within the budget.
  void keep(Node& n, WarmOpen w);
  // The file of `n` changed behind the mount, or `n` is about to be destroyed.
  void drop(Node& n);
  // Something was renamed: any path may now name other content. The fds are closed; the
  // verdicts left without one are outdated by the count of renames (see find).
  void drop_all();

  // How many renames were seen: taken before an open, so that keep() can tell.
  uint64_t renames() const { return renames_.load(); }
  // How many fds are kept, and how many verdicts without one, as status reads them while the
  // mount runs.
  const std::atomic<size_t>& size_counter() const { return size_; }
  const std::atomic<size_t>& verdict_counter() const { return verdict_count_; }

 private:
  // With mutex_ held: takes `n` out of the list it is in.
  void unlist(Node& n);
  // With mutex_ held: forgets the oldest verdicts past the budget, and those a rename
  // outdated ahead of them; what they held goes to `dropped`.
  void trim_verdicts(std::vector<std::shared_ptr<const WarmOpen>>& dropped);

  size_t capacity_ = 0;
  size_t verdict_budget_ = SIZE_MAX;
  // Lock order: mutex_, then a Node's fd_mutex.
  std::mutex mutex_;
  std::list<Node*> kept_;             // those with an fd, oldest first; guarded by mutex_
  std::list<Node*> verdicts_;         // those without one, oldest first; guarded by mutex_
  size_t verdict_bytes_ = 0;          // what verdicts_ hold; guarded by mutex_
  std::atomic<uint64_t> renames_{0};  // changed with mutex_ held
  std::atomic<size_t> size_{0};       // kept_.size(), changed with mutex_ held
  std::atomic<size_t> verdict_count_{0};  // verdicts_.size(), changed with mutex_ held
};

}  // namespace digestfs::fs
