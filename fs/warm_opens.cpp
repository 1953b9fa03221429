#include "fs/warm_opens.hpp"

#include <vector>

#include "fs/node_table.hpp"

namespace digestfs::fs {

std::shared_ptr<const WarmOpen> WarmOpens::find(Node& n) {
  if (!on() || !n.handle) return nullptr;
  std::lock_guard lock(n.fd_mutex);
  return n.warm;
}

void WarmOpens::keep(Node& n, WarmOpen w) {
  // Nodes without handles own an fd already (see NodeReclaimer): they keep no second one.
  if (!on() || !n.handle) return;
  auto kept = std::make_shared<const WarmOpen>(std::move(w));
  // Closed once the locks are let go.
  std::vector<std::shared_ptr<const WarmOpen>> dropped;
  std::lock_guard lock(mutex_);
  if (kept->renames != renames_.load()) return;
  if (n.warm_listed) kept_.erase(n.warm_at);
  n.warm_at = kept_.insert(kept_.end(), &n);
  n.warm_listed = true;
  {
    std::lock_guard node_lock(n.fd_mutex);
    dropped.push_back(std::exchange(n.warm, std::move(kept)));
  }
  while (kept_.size() > capacity_) {
    Node& oldest = *kept_.front();
    std::lock_guard node_lock(oldest.fd_mutex);
    dropped.push_back(std::exchange(oldest.warm, nullptr));
    unlist(oldest);
  }
  size_.store(kept_.size());
}

void WarmOpens::drop(Node& n) {
  std::shared_ptr<const WarmOpen> dropped;
  std::lock_guard lock(mutex_);
  if (!n.warm_listed) return;
  unlist(n);
  std::lock_guard node_lock(n.fd_mutex);
  dropped = std::exchange(n.warm, nullptr);
}

void WarmOpens::drop_all() {
  std::vector<std::shared_ptr<const WarmOpen>> dropped;
  std::lock_guard lock(mutex_);
  ++renames_;
  dropped.reserve(kept_.size());
  for (Node* n : kept_) {
    std::lock_guard node_lock(n->fd_mutex);
    dropped.push_back(std::exchange(n->warm, nullptr));
    n->warm_listed = false;
  }
  kept_.clear();
  size_.store(0);
}

void WarmOpens::unlist(Node& n) {
  kept_.erase(n.warm_at);
  n.warm_listed = false;
  size_.store(kept_.size());
}

}  // namespace digestfs::fs
