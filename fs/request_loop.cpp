#include "fs/request_loop.hpp"

#include <poll.h>

#include "fs/mount_context.hpp"
#include "src/base/thread_name.hpp"

namespace digestfs::fs {
namespace {

// As many ops may wait at once as libfuse's multi-threaded loop had threads for all ops: a
// few opens waiting for the disk, a reload or the TPM must not keep the next hashing open
// from both cores.
constexpr unsigned kWaitingThreads = 10;

}  // namespace

WaitingOps::WaitingOps(unsigned threads, const char* name) {
  workers_.reserve(threads);
  threads_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    Worker& w = *workers_.emplace_back(std::make_unique<Worker>());
    threads_.push_back(named_thread(name, [this, &w] { run(w); }));
  }
}

WaitingOps::~WaitingOps() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (Worker* w : idle_) w->wake.notify_one();
  }
  for (auto& t : threads_) t.join();
}

void WaitingOps::hand_over(std::function<void()> op) {
  std::lock_guard lock(mutex_);
  queue_.push_back(std::move(op));
  if (idle_.empty()) return;  // every thread is busy: the first done takes it
  Worker* w = idle_.back();
  idle_.pop_back();
  w->woken = true;
  w->wake.notify_one();
}

void WaitingOps::run(Worker& me) {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (!queue_.empty()) {
      std::function<void()> op = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      op();
      lock.lock();
      continue;
    }
    if (stopping_) return;
    me.woken = false;
    idle_.push_back(&me);
    me.wake.wait(lock, [&] { return me.woken || stopping_; });
  }
}

bool requests_queued(fuse_session* se) {
  pollfd device{fuse_session_fd(se), POLLIN, 0};
  return poll(&device, 1, 0) > 0 && (device.revents & POLLIN);
}

int serve_requests(fuse_session* se, MountContext& ctx) {
  struct Unset {
    MountContext& ctx;
    ~Unset() { ctx.waiting = ctx.link_drops = nullptr; }
  } unset{ctx};
  // Both gone before `unset`, every op handed over answered; the drops last, since a waiting
  // op may hand one over.
  WaitingOps link_drops(1, "dfs-link-drops");
  WaitingOps waiting(kWaitingThreads, "dfs-waiting");
  ctx.link_drops = &link_drops;
  ctx.waiting = &waiting;
  return fuse_session_loop(se);
}

}  // namespace digestfs::fs
