// VerdictMemo: what the content of an inode was found to be, remembered until it changes.
// It stores the content digest, not a pass/fail, so that every path of a hard-linked inode is
// still judged by its own entry, and a reload re-judges against new entries without hashing.
// Beside the digests it keeps the block tree of the same bytes (when block checks are on),
// within a memory budget: past it, the trees used least recently are dropped, and the next
// open of such a file hashes it again. In memory only: after a remount or reboot everything
// is verified again. Nor does it grow without bound as inodes come and go (a filesystem that
// never reuses inode numbers gives every updated file a new one): past its limit of slots, a
// shard forgets those nobody used since its last sweep, which are hashed again if opened.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "cache/block_tree.hpp"
#include "cache/file_hasher.hpp"
#include "src/base/content_stamp.hpp"

namespace digestfs {

struct TreeStats {
  uint64_t trees = 0, bytes = 0, dropped = 0;
};

class VerdictMemo {
 public:
  // Four times the files of a large distribution's /usr; a slot takes a few hundred bytes.
  static constexpr size_t kSlotLimit = size_t{1} << 20;

  explicit VerdictMemo(size_t tree_budget_bytes = SIZE_MAX, size_t slot_limit = kSlotLimit);

  enum class Source { Remembered, Hashed };
  struct Lookup {
    Result<ContentDigest> digest;
    Source source;
    std::shared_ptr<const BlockTree> tree;  // asked for: the block tree of the same bytes
  };

  // The digest of the content stamped `stamp` in `algo`: remembered, or computed by `hash`
  // (which fails if the file no longer carries `stamp` afterwards). With `want_tree`, the
  // block tree of the same bytes too: `hash` is then handed a builder to feed while it reads,
  // unless a tree is remembered. `hash` runs only once the stamp's ctime can no longer be
  // reused by a later write. Concurrent callers for one inode wait for the first one's hash
  // instead of hashing again.
  using HashFn = std::function<Result<ContentDigest>(BlockTree::Builder*)>;
  Lookup digest(const ContentStamp& stamp, uint8_t algo, const HashFn& hash,
                bool want_tree = false);
  // What `digest` would answer without waiting, for the request loop: what is remembered, or
  // what `hash` computes when nobody else is hashing this inode and its ctime has settled.
  // Nothing otherwise, or when `hash` fails with EWOULDBLOCK (it would have to wait: see
  // hash_fd's cached_only); such a failure is not remembered.
  std::optional<Lookup> digest_without_waiting(const ContentStamp& stamp, uint8_t algo,
                                               const HashFn& hash, bool want_tree = false);
  // What `digest` would answer without hashing or waiting: nothing when this version's digest
  // in `algo` (and, with `want_tree`, its block tree) is not remembered, or is being hashed.
  std::optional<Lookup> remembered(const ContentStamp& stamp, uint8_t algo, bool want_tree = false);
  // Forgets what it remembers of this version: what was read of it did not match its tree.
  void forget(const ContentStamp& stamp);
  TreeStats tree_stats() const;
  // How many inodes it holds a slot for.
  size_t slots() const;

 private:
  struct Slot;
  // The trees held, most recently used first; its entries and the slots' places in it are
  // guarded by lru_mutex_.
  struct TreeEntry {
    std::weak_ptr<Slot> slot;
    const BlockTree* tree;
    size_t bytes;
  };
  using Lru = std::list<TreeEntry>;
  struct Slot {
    std::mutex mutex;  // lock order: a shard's mutex before this; lru_mutex_ after it
    std::condition_variable done;
    bool hashing = false;
    ContentStamp stamp;
    std::vector<ContentDigest> digests;  // one per algorithm asked for
    std::shared_ptr<const BlockTree> tree;
    std::optional<Lru::iterator> in_lru;  // guarded by lru_mutex_
    std::atomic<bool> used{true};         // since the last sweep of its shard
  };
  struct Key {
    dev_t dev;
    ino_t ino;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return std::hash<uint64_t>()(k.ino * 31 + k.dev); }
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<Key, std::shared_ptr<Slot>, KeyHash> slots;
    size_t sweep_at = 0;  // how many slots the next new one sweeps at
  };
  std::shared_ptr<Slot> slot(const Key& key);
  std::shared_ptr<Slot> existing_slot(const Key& key);  // null when there is none
  // With sh's mutex held: forgets the slots that nobody holds and nobody used since the last
  // sweep; the next sweep comes once the shard has doubled what is left (or reached its
  // limit), so that each new slot costs a constant share of the sweeps.
  void sweep(Shard& sh);
  // Once s->hashing was set by the caller: hashes, remembers a digest (and tree) computed,
  // clears s->hashing and wakes those waiting for it.
  Lookup hashed(const std::shared_ptr<Slot>& s, const ContentStamp& stamp, uint8_t algo,
                const HashFn& hash, bool want_tree);
  // With s's mutex held: what s remembers of `stamp` in `algo` (see remembered).
  std::optional<Lookup> known_in(Slot& s, const ContentStamp& stamp, uint8_t algo, bool want_tree);
  Shard& shard(const Key& key) { return shards_[KeyHash()(key) % shards_.size()]; }
  // With s's mutex held: s keeps `tree` from now on; returns the trees to drop for the budget
  // (dropped by the caller once s's mutex is released).
  std::vector<TreeEntry> keep_tree(const std::shared_ptr<Slot>& s,
                                   std::shared_ptr<const BlockTree> tree);
  // With s's mutex held: s's tree (if any) leaves the budget.
  void release_tree(Slot& s);
  void touch(Slot& s);
  void drop(const std::vector<TreeEntry>& victims);

  std::array<Shard, 64> shards_;
  const size_t tree_budget_;
  const size_t shard_limit_;
  mutable std::mutex lru_mutex_;  // taken last, alone or after one slot's mutex
  Lru lru_;
  uint64_t tree_bytes_ = 0;     // guarded by lru_mutex_
  uint64_t trees_dropped_ = 0;  // guarded by lru_mutex_
};

}  // namespace digestfs
