#include "src/daemon/verdict_memo.hpp"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace digestfs {
namespace {

int64_t coarse_now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// The kernel stamps ctime from a coarse clock (one tick; whole seconds on some filesystems),
// so a second write in the tick of the first leaves ctime as it was. Once that clock has
// moved past a version's ctime, every later write gives a newer one: content hashed from then
// on is the only content that can carry the stamp. Waits (at most a tick, or a second on
// filesystems with one-second timestamps) only for files changed that recently.
// How long until it has: 0 once it has.
int64_t ctime_settles_in(int64_t ctime_ns) {
  // The filesystem's granularity, as far as this ctime shows it.
  int64_t granularity = 1;
  while (granularity < 1000000000LL && ctime_ns % (granularity * 10) == 0) granularity *= 10;
  const int64_t now = coarse_now_ns();
  // A ctime far ahead of the clock means the clock was set back: later writes differ anyway.
  if (now >= ctime_ns + granularity || ctime_ns - now > 2000000000LL) return 0;
  return ctime_ns + granularity - now;
}

void wait_until_ctime_settles(int64_t ctime_ns) {
  while (const int64_t left = ctime_settles_in(ctime_ns)) {
    std::this_thread::sleep_for(std::chrono::nanoseconds(left));
  }
}

}  // namespace

VerdictMemo::VerdictMemo(size_t tree_budget_bytes, size_t slot_limit)
    : tree_budget_(tree_budget_bytes),
      shard_limit_(std::max<size_t>(1, slot_limit / std::tuple_size_v<decltype(shards_)>)) {
  for (Shard& sh : shards_) sh.sweep_at = shard_limit_;
}

std::shared_ptr<VerdictMemo::Slot> VerdictMemo::slot(const Key& key) {
  Shard& sh = shard(key);
  std::lock_guard lock(sh.mutex);
  if (auto it = sh.slots.find(key); it != sh.slots.end()) {
    it->second->used.store(true, std::memory_order_relaxed);
    return it->second;
  }
  if (sh.slots.size() >= sh.sweep_at) sweep(sh);
  auto made = std::make_shared<Slot>();
  sh.slots.emplace(key, made);
  return made;
}

void VerdictMemo::sweep(Shard& sh) {
  for (auto it = sh.slots.begin(); it != sh.slots.end();) {
    // Held by a caller (hashing, or judging by it): kept. Nobody else can take it from the
    // shard meanwhile; the tree budget's weak reference is let go under the slot's mutex.
    if (it->second.use_count() > 1 || it->second->used.exchange(false)) {
      ++it;
      continue;
    }
    {
      std::lock_guard lock(it->second->mutex);
      release_tree(*it->second);
    }
    it = sh.slots.erase(it);
  }
  sh.sweep_at = std::max(shard_limit_, 2 * sh.slots.size());
}

std::vector<VerdictMemo::TreeEntry> VerdictMemo::keep_tree(const std::shared_ptr<Slot>& s,
                                                           std::shared_ptr<const BlockTree> tree) {
  std::vector<TreeEntry> victims;
  std::lock_guard lock(lru_mutex_);
  if (s->in_lru) {
    tree_bytes_ -= (*s->in_lru)->bytes;
    lru_.erase(*s->in_lru);
  }
  const size_t bytes = tree->memory_bytes();
  lru_.push_front(TreeEntry{s, tree.get(), bytes});
  s->in_lru = lru_.begin();
  tree_bytes_ += bytes;
  s->tree = std::move(tree);
  // The newest tree stays even when it alone is over the budget: an open needs it.
  while (tree_bytes_ > tree_budget_ && lru_.size() > 1) {
    TreeEntry victim = lru_.back();
    lru_.pop_back();
    tree_bytes_ -= victim.bytes;
    ++trees_dropped_;
    if (auto vs = victim.slot.lock()) vs->in_lru.reset();
    victims.push_back(std::move(victim));
  }
  return victims;
}

void VerdictMemo::drop(const std::vector<TreeEntry>& victims) {
  for (const auto& v : victims) {
    auto s = v.slot.lock();
    if (!s) continue;
    std::lock_guard lock(s->mutex);
    // Only the tree that was dropped from the budget: the slot may hold a newer one by now.
    if (s->tree.get() == v.tree) s->tree.reset();
  }
}

void VerdictMemo::release_tree(Slot& s) {
  s.tree.reset();
  std::lock_guard lock(lru_mutex_);
  if (!s.in_lru) return;
  tree_bytes_ -= (*s.in_lru)->bytes;
  lru_.erase(*s.in_lru);
  s.in_lru.reset();
}

void VerdictMemo::touch(Slot& s) {
  std::lock_guard lock(lru_mutex_);
  if (s.in_lru) lru_.splice(lru_.begin(), lru_, *s.in_lru);
}

VerdictMemo::Lookup VerdictMemo::digest(const ContentStamp& stamp, uint8_t algo, const HashFn& hash,
                                        bool want_tree) {
  std::shared_ptr<Slot> s = slot({stamp.dev, stamp.ino});
  std::unique_lock lock(s->mutex);
  s->done.wait(lock, [&] { return !s->hashing; });
  if (auto known = known_in(*s, stamp, algo, want_tree)) return std::move(*known);
  s->hashing = true;
  lock.unlock();
  wait_until_ctime_settles(stamp.ctime_ns);
  return hashed(s, stamp, algo, hash, want_tree);
}

std::optional<VerdictMemo::Lookup> VerdictMemo::digest_without_waiting(const ContentStamp& stamp,
                                                                       uint8_t algo,
                                                                       const HashFn& hash,
                                                                       bool want_tree) {
  std::shared_ptr<Slot> s = slot({stamp.dev, stamp.ino});
  std::unique_lock lock(s->mutex);
  if (s->hashing) return std::nullopt;
  if (auto known = known_in(*s, stamp, algo, want_tree)) return known;
  if (ctime_settles_in(stamp.ctime_ns) > 0) return std::nullopt;
  s->hashing = true;
  lock.unlock();
  Lookup looked = hashed(s, stamp, algo, hash, want_tree);
  if (!looked.digest && looked.digest.error().code == EWOULDBLOCK) return std::nullopt;
  return looked;
}

VerdictMemo::Lookup VerdictMemo::hashed(const std::shared_ptr<Slot>& s, const ContentStamp& stamp,
                                        uint8_t algo, const HashFn& hash, bool want_tree) {
  std::optional<BlockTree::Builder> builder;
  if (want_tree) builder.emplace();
  auto result = hash(builder ? &*builder : nullptr);
  std::shared_ptr<const BlockTree> tree;
  if (result && builder) {
    auto built = builder->finish();
    if (built)
      tree = std::make_shared<const BlockTree>(std::move(built.value()));
    else
      result = built.error();
  }
  std::unique_lock lock(s->mutex);
  s->hashing = false;
  std::vector<TreeEntry> victims;
  if (result) {
    if (!(s->stamp == stamp)) {
      s->stamp = stamp;
      s->digests.clear();
      release_tree(*s);
    }
    std::erase_if(s->digests, [&](const ContentDigest& d) { return d.digest.algo() == algo; });
    s->digests.push_back(*result);
    if (tree) victims = keep_tree(s, tree);
  }
  lock.unlock();
  s->done.notify_all();
  drop(victims);
  return {std::move(result), Source::Hashed, std::move(tree)};
}

std::optional<VerdictMemo::Lookup> VerdictMemo::known_in(Slot& s, const ContentStamp& stamp,
                                                         uint8_t algo, bool want_tree) {
  if (!(s.stamp == stamp) || (want_tree && !s.tree)) return std::nullopt;
  for (const auto& d : s.digests) {
    if (d.digest.algo() != algo) continue;
    if (want_tree) touch(s);
    return Lookup{d, Source::Remembered, want_tree ? s.tree : nullptr};
  }
  return std::nullopt;
}

std::shared_ptr<VerdictMemo::Slot> VerdictMemo::existing_slot(const Key& key) {
  Shard& sh = shard(key);
  std::lock_guard lock(sh.mutex);
  auto it = sh.slots.find(key);
  if (it == sh.slots.end()) return nullptr;
  it->second->used.store(true, std::memory_order_relaxed);
  return it->second;
}

std::optional<VerdictMemo::Lookup> VerdictMemo::remembered(const ContentStamp& stamp, uint8_t algo,
                                                           bool want_tree) {
  std::shared_ptr<Slot> s = existing_slot({stamp.dev, stamp.ino});
  if (!s) return std::nullopt;
  std::lock_guard lock(s->mutex);
  if (s->hashing) return std::nullopt;
  return known_in(*s, stamp, algo, want_tree);
}

void VerdictMemo::forget(const ContentStamp& stamp) {
  std::shared_ptr<Slot> s = existing_slot({stamp.dev, stamp.ino});
  if (!s) return;
  std::lock_guard lock(s->mutex);
  if (!(s->stamp == stamp)) return;
  s->stamp = ContentStamp{};
  s->digests.clear();
  release_tree(*s);
}

size_t VerdictMemo::slots() const {
  size_t n = 0;
  for (const Shard& sh : shards_) {
    std::lock_guard lock(sh.mutex);
    n += sh.slots.size();
  }
  return n;
}

TreeStats VerdictMemo::tree_stats() const {
  std::lock_guard lock(lru_mutex_);
  return TreeStats{lru_.size(), tree_bytes_, trees_dropped_};
}

}  // namespace digestfs
