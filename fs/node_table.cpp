#include "fs/node_table.hpp"

namespace digestfs::fs {

NodeTable::NodeTable(UniqueFd root_fd) {
  root_.fd = std::move(root_fd);
  struct stat st;
  if (fstat(root_.fd.get(), &st) == 0) {
    root_.dev = st.st_dev;
    root_.ino = st.st_ino;
  }
  root_.nlookup = 1;
}

Node& NodeTable::node(fuse_ino_t ino) {
  if (ino == FUSE_ROOT_ID) return root_;
  return *reinterpret_cast<Node*>(ino);
}

fuse_ino_t NodeTable::id(const Node& n) const {
  return &n == &root_ ? FUSE_ROOT_ID : reinterpret_cast<fuse_ino_t>(&n);
}

Node& NodeTable::remember(UniqueFd fd, const struct stat& st, const Node& parent,
                          const std::string& name) {
  if (st.st_dev == root_.dev && st.st_ino == root_.ino) return root_;
  const bool per_path = S_ISREG(st.st_mode) && st.st_nlink > 1;
  Key key{st.st_dev, st.st_ino, per_path ? parent.ino : 0, per_path ? name : std::string()};
  std::lock_guard lock(mutex_);
  auto& slot = nodes_[key];
  if (!slot) {
    slot = std::make_unique<Node>();
    slot->fd = std::move(fd);
    slot->dev = st.st_dev;
    slot->ino = st.st_ino;
    slot->parent = id(parent);
    slot->parent_serial = parent.serial;
    slot->serial = ++serials_;
    slot->name = name;
    keys_[slot.get()] = key;
    size_.store(nodes_.size(), std::memory_order_relaxed);
  }
  ++slot->nlookup;
  slot->last_lookup = ++lookups_;
  return *slot;
}

bool NodeTable::parent_known(const Entry& e) {
  std::lock_guard lock(mutex_);
  return known(e);
}

bool NodeTable::known(const Entry& e) const {
  const auto* parent = reinterpret_cast<const Node*>(e.parent);
  return e.parent == FUSE_ROOT_ID || (keys_.count(parent) > 0 && parent->serial == e.parent_serial);
}

std::vector<NodeTable::Entry> NodeTable::least_recent(size_t n) {
  std::lock_guard lock(mutex_);
  std::vector<Node*> candidates;
  candidates.reserve(nodes_.size());
  for (auto& [key, node] : nodes_) {
    // A parent the kernel has forgotten cannot name the entry any more: those entries go
    // with their parent.
    if (node->reclaim_asked != node->last_lookup &&
        known(Entry{node->parent, node->parent_serial, {}})) {
      candidates.push_back(node.get());
    }
  }
  n = std::min(n, candidates.size());
  auto older = [](const Node* a, const Node* b) { return a->last_lookup < b->last_lookup; };
  std::nth_element(candidates.begin(), candidates.begin() + static_cast<ptrdiff_t>(n),
                   candidates.end(), older);
  std::vector<Entry> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    candidates[i]->reclaim_asked = candidates[i]->last_lookup;
    out.push_back(Entry{candidates[i]->parent, candidates[i]->parent_serial, candidates[i]->name});
  }
  return out;
}

std::vector<fuse_ino_t> NodeTable::ids_of(dev_t dev, ino_t ino) {
  std::vector<fuse_ino_t> out;
  if (dev == root_.dev && ino == root_.ino) out.push_back(FUSE_ROOT_ID);
  std::lock_guard lock(mutex_);
  // Keys order by device and inode first: one inode's nodes are adjacent.
  for (auto it = nodes_.lower_bound(Key{dev, ino, 0, std::string()});
       it != nodes_.end() && std::get<0>(it->first) == dev && std::get<1>(it->first) == ino; ++it) {
    out.push_back(id(*it->second));
  }
  return out;
}

std::vector<std::pair<fuse_ino_t, NodeTable::Entry>> NodeTable::all() {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<fuse_ino_t, Entry>> out;
  out.reserve(nodes_.size());
  for (auto& [key, node] : nodes_) {
    out.emplace_back(id(*node), Entry{node->parent, node->parent_serial, node->name});
  }
  return out;
}

void NodeTable::forget(fuse_ino_t ino, uint64_t n) {
  if (ino == FUSE_ROOT_ID) return;
  Node* node = reinterpret_cast<Node*>(ino);
  std::lock_guard lock(mutex_);
  node->nlookup -= std::min(n, node->nlookup);
  if (node->nlookup == 0) {
    auto k = keys_.find(node);
    if (k != keys_.end()) {
      Key key = k->second;
      keys_.erase(k);
      nodes_.erase(key);
      size_.store(nodes_.size(), std::memory_order_relaxed);
    }
  }
}

}  // namespace digestfs::fs
