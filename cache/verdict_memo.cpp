#include "cache/verdict_memo.hpp"

namespace digestfs {

ContentStamp stamp_of(const struct stat& st) {
  return ContentStamp{st.st_dev, st.st_ino, st.st_size,
                      st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                      st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec};
}

std::shared_ptr<VerdictMemo::Slot> VerdictMemo::slot(const Key& key) {
  Shard& s = shard(key);
  std::lock_guard lock(s.mutex);
  auto& p = s.slots[key];
  if (!p) p = std::make_shared<Slot>();
  return p;
}

VerdictMemo::Lookup VerdictMemo::digest(const ContentStamp& stamp, uint8_t algo,
                                        const HashFn& hash) {
  std::shared_ptr<Slot> s = slot({stamp.dev, stamp.ino});
  std::unique_lock lock(s->mutex);
  s->done.wait(lock, [&] { return !s->hashing; });
  if (s->stamp == stamp) {
    for (const auto& d : s->digests) {
      if (d.algo == algo) return {d, Source::Remembered};
    }
  }
  s->hashing = true;
  lock.unlock();
  auto [result, rememberable] = hash();
  lock.lock();
  s->hashing = false;
  if (result && rememberable) {
    if (!(s->stamp == stamp)) {
      s->stamp = stamp;
      s->digests.clear();
    }
    s->digests.push_back(*result);
  }
  lock.unlock();
  s->done.notify_all();
  return {std::move(result), Source::Hashed};
}

}  // namespace digestfs
