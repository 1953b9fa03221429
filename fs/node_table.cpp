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

Node& NodeTable::remember(UniqueFd fd, const struct stat& st, ino_t parent_ino,
                          const std::string& name) {
  if (st.st_dev == root_.dev && st.st_ino == root_.ino) return root_;
  const bool per_path = S_ISREG(st.st_mode) && st.st_nlink > 1;
  Key key{st.st_dev, st.st_ino, per_path ? parent_ino : 0, per_path ? name : std::string()};
  std::lock_guard lock(mutex_);
  auto& slot = nodes_[key];
  if (!slot) {
    slot = std::make_unique<Node>();
    slot->fd = std::move(fd);
    slot->dev = st.st_dev;
    slot->ino = st.st_ino;
    keys_[slot.get()] = key;
  }
  ++slot->nlookup;
  return *slot;
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
    }
  }
}

}  // namespace digestfs::fs
