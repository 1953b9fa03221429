#include "fs/node_table.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "src/base/proc_path.hpp"

namespace digestfs::fs {

NodeTable::NodeTable(UniqueFd root, bool by_handle)
    : root_fd_(std::make_shared<const UniqueFd>(std::move(root))) {
  root_.fd = root_fd_;
  struct stat st;
  if (fstat(root_fd(), &st) == 0) {
    root_.dev = st.st_dev;
    root_.ino = st.st_ino;
  }
  root_.nlookup = 1;
  // Handles only where the kernel gives connectable ones and opens them for us (Linux 6.13
  // and CAP_DAC_READ_SEARCH): tried once, on the root itself.
  if (!by_handle) return;
  mount_id_ = FileHandle::mount_id_of(root_fd());
  UniqueFd readable(openat(root_fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  const auto probe = mount_id_ < 0 ? std::nullopt : FileHandle::of(root_fd(), ".", mount_id_);
  if (readable && probe && probe->open(readable.get(), O_PATH | O_CLOEXEC)) {
    handles_root_ = std::move(readable);
  }
}

Node& NodeTable::node(fuse_ino_t ino) {
  if (ino == FUSE_ROOT_ID) return root_;
  return *reinterpret_cast<Node*>(ino);
}

fuse_ino_t NodeTable::id(const Node& n) const {
  return &n == &root_ ? FUSE_ROOT_ID : reinterpret_cast<fuse_ino_t>(&n);
}

Node* NodeTable::look_up(const Node& parent, int parent_fd, const char* name, struct stat& st) {
  std::optional<FileHandle> handle;
  UniqueFd fd;
  if (by_handle()) {
    handle = FileHandle::of(parent_fd, name, mount_id_);
    if (handle) {
      // The fd is what the handle names, so the node's attributes and its handle agree even
      // when the name is replaced meanwhile.
      fd = handle->open(handles_root_.get(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (!fd) return nullptr;
    } else if (errno != EXDEV && errno != EOPNOTSUPP && errno != EINVAL && errno != EOVERFLOW) {
      return nullptr;  // no such file (ENOENT, ENOTDIR, EACCES, ...): what openat would say
    }
  }
  if (fd && fstatat(fd.get(), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return nullptr;
  if (fd && !S_ISDIR(st.st_mode) && st.st_nlink > 1) {
    // A file with several links: the handle may have opened any of its paths, and the node
    // must hold the one looked up.
    fd.reset();
    handle.reset();
  }
  if (!fd) {
    fd.reset(openat(parent_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd || fstatat(fd.get(), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return nullptr;
  }
  return &remember(std::move(fd), std::move(handle), st, parent, name);
}

Node& NodeTable::remember(UniqueFd fd, std::optional<FileHandle> handle, const struct stat& st,
                          const Node& parent, const std::string& name) {
  if (st.st_dev == root_.dev && st.st_ino == root_.ino) return root_;
  // A symlink too: the kernel may keep its target, judged for the path it was read through.
  const bool per_path = (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) && st.st_nlink > 1;
  Key key{st.st_dev, st.st_ino, per_path ? parent.ino : 0, per_path ? name : std::string()};
  bool moved = false;
  Node* found = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (handle) retire_if_gone(key, *handle);
    auto& slot = nodes_[key];
    if (!slot) {
      slot = std::make_unique<Node>();
      if (handle) {
        slot->handle = std::move(handle);
      } else {
        slot->fd = std::make_shared<const UniqueFd>(std::move(fd));
        fds_.fetch_add(1, std::memory_order_relaxed);
      }
      slot->dev = st.st_dev;
      slot->ino = st.st_ino;
      slot->link = S_ISLNK(st.st_mode);
      slot->serial = ++serials_;
      keys_[slot.get()] = key;
      size_.store(nodes_.size(), std::memory_order_relaxed);
    } else {
      // Under another node of the same directory too: the kernel forgot the one it had
      // while it kept this node (an open file, an inotify watch), and may have looked the
      // new one up by a new name, which no lookup of a known node showed.
      moved =
          slot->parent != id(parent) || slot->parent_serial != parent.serial || slot->name != name;
    }
    slot->parent = id(parent);
    slot->parent_serial = parent.serial;
    slot->name = name;
    ++slot->nlookup;
    slot->last_lookup = ++lookups_;
    found = slot.get();
  }
  // The file or directory may have been renamed beneath the mount, and the kernel reaches it
  // by its new path before the watcher has reported the rename (or ever will: a rename
  // between directories the mount has forgotten is reported of none it knows). The fds kept
  // beneath it were judged at paths they may no longer have. Every open by a new path
  // takes such a lookup first.
  if (moved) {
    // Only a directory or a symlink moved can give a kept target another path.
    if (found->link || S_ISDIR(st.st_mode)) moves_.fetch_add(1, std::memory_order_relaxed);
    warm_.drop_all();
  }
  return *found;
}

namespace {

// A handle of a removed file fails to open with ESTALE, ENOENT or (connectable, on ext4)
// EISDIR; ESTALE tells the kernel to look the name up afresh instead.
UniqueFd open_handle(const FileHandle& handle, int mount_fd, int flags) {
  UniqueFd fd = handle.open(mount_fd, flags);
  if (!fd && (errno == ENOENT || errno == EISDIR)) errno = ESTALE;
  return fd;
}

}  // namespace

void NodeTable::retire_if_gone(const Key& key, const FileHandle& handle) {
  const auto found = nodes_.find(key);
  if (found == nodes_.end() || !found->second->handle || *found->second->handle == handle) return;
  // Another handle for the same inode number: the same file reached another way (a connectable
  // handle names the parent too), or a new file given the number of one that is gone while the
  // kernel still knew it (its forget on the way, or the old inode held open). The latter's
  // node could only answer ESTALE, or the kernel would serve what it kept of the old file
  // (a symlink's target) as the new one's: it keeps its stale handle under a key no lookup
  // makes (no name holds a '/') until it is forgotten, and the new file gets a node of its own.
  const UniqueFd old =
      open_handle(*found->second->handle, handles_root_.get(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (old || errno != ESTALE) return;
  Key retired{std::get<0>(key), std::get<1>(key), 0, "/" + std::to_string(found->second->serial)};
  keys_[found->second.get()] = retired;
  nodes_[retired] = std::move(found->second);
  nodes_.erase(found);
}

NodeFd NodeTable::path_fd(Node& n) {
  {
    std::lock_guard lock(n.fd_mutex);
    if (n.fd && n.fd->valid()) return NodeFd(n.fd);
  }
  if (!n.handle) {
    errno = EBADF;
    return NodeFd();
  }
  UniqueFd fd = open_handle(*n.handle, handles_root_.get(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (!fd) return NodeFd();
  return NodeFd(std::make_shared<const UniqueFd>(std::move(fd)));
}

UniqueFd NodeTable::open(Node& n, int flags) {
  // O_NOFOLLOW would refuse the proc magic link itself.
  flags = (flags & ~O_NOFOLLOW) | O_CLOEXEC;
  if (n.handle) return open_handle(*n.handle, handles_root_.get(), flags);
  const NodeFd fd = path_fd(n);
  if (!fd) return UniqueFd();
  return UniqueFd(::open(proc_path(fd.get()).c_str(), flags));
}

bool NodeTable::names_its_path(Node& n, const struct stat& st) {
  return !n.handle || S_ISDIR(st.st_mode) || st.st_nlink <= 1;
}

void NodeTable::hold(Node& n, std::shared_ptr<const UniqueFd> open_fd) {
  if (!n.handle) return;
  std::lock_guard lock(n.fd_mutex);
  if (n.holds++ == 0) n.fd = std::move(open_fd);
}

void NodeTable::let_go(Node& n) {
  if (!n.handle) return;
  std::lock_guard lock(n.fd_mutex);
  if (--n.holds == 0) n.fd.reset();
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
    if (!node->handle && node->reclaim_asked != node->last_lookup &&
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
  return nodes_of(dev, ino, false);
}

std::vector<fuse_ino_t> NodeTable::changed(dev_t dev, ino_t ino) {
  return nodes_of(dev, ino, true);
}

std::vector<fuse_ino_t> NodeTable::nodes_of(dev_t dev, ino_t ino, bool drop_kept) {
  std::vector<fuse_ino_t> out;
  if (dev == root_.dev && ino == root_.ino) out.push_back(FUSE_ROOT_ID);
  std::lock_guard lock(mutex_);
  // Keys order by device and inode first: one inode's nodes are adjacent.
  for (auto it = nodes_.lower_bound(Key{dev, ino, 0, std::string()});
       it != nodes_.end() && std::get<0>(it->first) == dev && std::get<1>(it->first) == ino; ++it) {
    if (drop_kept) warm_.drop(*it->second);
    out.push_back(id(*it->second));
  }
  return out;
}

std::vector<fuse_ino_t> NodeTable::links() {
  std::lock_guard lock(mutex_);
  std::vector<fuse_ino_t> out;
  for (auto& [key, node] : nodes_) {
    if (node->link) out.push_back(id(*node));
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
      if (!node->handle) fds_.fetch_sub(1, std::memory_order_relaxed);
      Key key = k->second;
      keys_.erase(k);
      warm_.drop(*node);
      nodes_.erase(key);
      size_.store(nodes_.size(), std::memory_order_relaxed);
    }
  }
}

}  // namespace digestfs::fs
