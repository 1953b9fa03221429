#include "fs/warm_opens.hpp"

#include "fs/node_table.hpp"

namespace digestfs::fs {
namespace {

// What a verdict kept without its fd costs: itself, its place in the list, its block tree.
size_t verdict_bytes(const WarmOpen& w) {
  return sizeof(WarmOpen) + sizeof(Node*) * 3 + (w.guard ? w.guard->memory_bytes() : 0);
}

}  // namespace

std::shared_ptr<const WarmOpen> WarmOpens::find(Node& n) {
  if (!on() || !n.handle) return nullptr;
  std::lock_guard lock(n.fd_mutex);
  if (!n.warm || n.warm->renames != renames_.load()) return nullptr;
  return n.warm;
}

void WarmOpens::keep(Node& n, WarmOpen w) {
  // Nodes without handles own an fd already (see NodeReclaimer): they keep no second one.
  if (!on() || !n.handle) return;
  auto kept = std::make_shared<const WarmOpen>(std::move(w));
  // Closed and freed once the locks are let go.
  std::vector<std::shared_ptr<const WarmOpen>> dropped;
  std::lock_guard lock(mutex_);
  if (kept->renames != renames_.load()) return;
  unlist(n);
  n.warm_at = kept_.insert(kept_.end(), &n);
  n.warm_in = WarmList::Fds;
  {
    std::lock_guard node_lock(n.fd_mutex);
    dropped.push_back(std::exchange(n.warm, std::move(kept)));
  }
  while (kept_.size() > capacity_) {
    Node& oldest = *kept_.front();
    unlist(oldest);
    std::lock_guard node_lock(oldest.fd_mutex);
    const WarmOpen& was = *oldest.warm;
    auto verdict = std::make_shared<const WarmOpen>(
        WarmOpen{nullptr, was.stamp, was.guard, was.verdicts, was.renames});
    verdict_bytes_ += verdict_bytes(*verdict);
    oldest.warm_at = verdicts_.insert(verdicts_.end(), &oldest);
    oldest.warm_in = WarmList::Verdicts;
    verdict_count_.store(verdicts_.size());
    dropped.push_back(std::exchange(oldest.warm, std::move(verdict)));
  }
  size_.store(kept_.size());
  trim_verdicts(dropped);
}

void WarmOpens::trim_verdicts(std::vector<std::shared_ptr<const WarmOpen>>& dropped) {
  while (!verdicts_.empty()) {
    Node& oldest = *verdicts_.front();
    if (verdict_bytes_ <= verdict_budget_ && oldest.warm->renames == renames_.load()) return;
    unlist(oldest);
    std::lock_guard node_lock(oldest.fd_mutex);
    dropped.push_back(std::exchange(oldest.warm, nullptr));
  }
}

void WarmOpens::drop(Node& n) {
  std::shared_ptr<const WarmOpen> dropped;
  std::lock_guard lock(mutex_);
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
    n->warm_in = WarmList::None;
  }
  kept_.clear();
  size_.store(0);
  // The verdicts left without fds are outdated too (see find): they are forgotten as they
  // come to the front of their list, so that a burst of renames (a package update) does
  // not walk them all each time.
}

void WarmOpens::unlist(Node& n) {
  switch (n.warm_in) {
    case WarmList::None: return;
    case WarmList::Fds:
      kept_.erase(n.warm_at);
      size_.store(kept_.size());
      break;
    case WarmList::Verdicts:
      verdicts_.erase(n.warm_at);
      verdict_bytes_ -= verdict_bytes(*n.warm);
      verdict_count_.store(verdicts_.size());
      break;
  }
  n.warm_in = WarmList::None;
}

}  // namespace digestfs::fs
