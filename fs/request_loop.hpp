// How the mount's requests are served: by one thread, so that a request that finds the
// daemon idle wakes that thread and no other (libfuse's multi-threaded loop wakes its idle
// threads in turn, one more context switch for each request). What may wait is handed to
// WaitingOps' threads, so that it never holds up the loop: an open that hashes its file, or
// waits for a reload or for another open hashing the same version; a symlink or a new file
// judged after a reload; a control write that waits for a reload; an fsync; large checked
// reads while others are queued.
#pragma once

#include <fuse_lowlevel.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace digestfs::fs {

struct MountContext;

class WaitingOps {
 public:
  // `threads` ops may wait at once, on threads called `name`; later ones wait their turn, in
  // order.
  WaitingOps(unsigned threads, const char* name);
  // Runs every op handed over (each answers its request), then ends the threads.
  ~WaitingOps();
  WaitingOps(const WaitingOps&) = delete;
  WaitingOps& operator=(const WaitingOps&) = delete;

  void hand_over(std::function<void()> op);

 private:
  struct Worker {
    std::condition_variable wake;
    bool woken = false;
  };
  void run(Worker& me);

  std::mutex mutex_;
  std::deque<std::function<void()>> queue_;
  // The idle threads, the last one idle on top: it is the one woken, so that a steady
  // trickle of ops keeps one thread (its stack, its caches) at work, not all in turn.
  std::vector<Worker*> idle_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
};

// Whether more requests wait to be read from the session's device.
bool requests_queued(fuse_session* se);

// Serves the session's requests until it ends, with ctx.waiting set for that time: returns
// once every op handed over has been answered (the session's fd is still open for them).
// libfuse's return: 0 once unmounted, else an error.
int serve_requests(fuse_session* se, MountContext& ctx);

}  // namespace digestfs::fs
