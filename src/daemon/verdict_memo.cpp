#include "src/daemon/verdict_memo.hpp"

#include <time.h>

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
void wait_until_ctime_settles(int64_t ctime_ns) {
  // The filesystem's granularity, as far as this ctime shows it.
  int64_t granularity = 1;
  while (granularity < 1000000000LL && ctime_ns % (granularity * 10) == 0) granularity *= 10;
  for (;;) {
    const int64_t now = coarse_now_ns();
    // A ctime far ahead of the clock means the clock was set back: later writes differ anyway.
    if (now >= ctime_ns + granularity || ctime_ns - now > 2000000000LL) return;
    std::this_thread::sleep_for(std::chrono::nanoseconds(ctime_ns + granularity - now));
  }
}

}  // namespace

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
      if (d.digest.algo() == algo) return {d, Source::Remembered};
    }
  }
  s->hashing = true;
  lock.unlock();
  wait_until_ctime_settles(stamp.ctime_ns);
  auto result = hash();
  lock.lock();
  s->hashing = false;
  if (result) {
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
