#include "fs/request_loop.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "fs/mount_context.hpp"
#include "src/base/thread_name.hpp"
#include "src/base/unique_fd.hpp"

namespace digestfs::fs {
namespace {

// As many ops may wait at once as libfuse's multi-threaded loop had threads for all ops: a
// few opens waiting for the disk, a reload or the TPM must not keep the next hashing open
// from both cores.
constexpr unsigned kWaitingThreads = 10;

// Aborts the session's connection: every request waiting fails, and no page stays locked for
// an answer. Only kept symlink targets are dropped by waiting for page locks: a mount that keeps
// none is left as before, for libfuse's unmount.
void end_connection(fuse_session* se, const MountContext& ctx) {
  if (!ctx.cache_links) return;
  // Ended already (unmounted): what libfuse's unmount looks for to leave the mount point be.
  pollfd device{fuse_session_fd(se), 0, 0};
  if (poll(&device, 1, 0) == 1 && (device.revents & POLLERR)) return;
  if (ctx.connection_abort >= 0 && write(ctx.connection_abort, "1", 1) == 1) return;
  // Without fusectl: the session's fd becomes /dev/null's (libfuse's replies and its close
  // still find a valid fd), and with the last reference to its /dev/fuse file gone the kernel
  // aborts the connection. A thread blocked writing to that file holds one more.
  const UniqueFd null(open("/dev/null", O_WRONLY | O_CLOEXEC));
  if (null) dup3(null.get(), fuse_session_fd(se), O_CLOEXEC);
}

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
  // Both gone before `unset`, every op handed over answered.
  WaitingOps link_drops(1, "dfs-link-drops");
  ctx.link_drops = &link_drops;
  int rc;
  {
    WaitingOps waiting(kWaitingThreads, "dfs-waiting");
    ctx.waiting = &waiting;
    rc = fuse_session_loop(se);
  }
  ctx.waiting = nullptr;
  // Nothing reads a request from here on (a stop signal ended the loop, or the kernel did).
  // A READLINK sent now would keep its link's page locked for good, and a drop under way (or
  // the watcher's) would wait for that lock, uninterruptibly: the daemon could not end. So the
  // connection ends now, as it would once the daemon exits, and every request still waiting
  // fails (ENOTCONN) instead of waiting for an answer.
  end_connection(se, ctx);
  return rc;
}

}  // namespace digestfs::fs
