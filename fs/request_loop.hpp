// The loop that serves a session's requests, leader/follower: one thread at a time reads
// /dev/fuse and answers what it read itself. A warm open (OPEN, then the RELEASE that close()
// does not wait for) so wakes no second thread; libfuse's multi-threaded loop wakes one per
// request, and git status over the mount paid a tenth more for it (docs/PERFORMANCE.md).
// A request about to wait long says so (before_long_wait, src/base/long_wait.hpp): its thread
// hands reading on to an idle thread, or to a new one while fewer than max_threads run, and
// joins the idle ones once it has answered. So a file being hashed, or read from the disk,
// holds up nothing behind it.
#pragma once

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <semaphore.h>

#include <condition_variable>
#include <list>
#include <mutex>

#include "src/base/long_wait.hpp"

namespace digestfs::fs {

class RequestLoop final : LongWaitHandler {
 public:
  RequestLoop(fuse_session* se, unsigned max_threads);
  ~RequestLoop();
  RequestLoop(const RequestLoop&) = delete;
  RequestLoop& operator=(const RequestLoop&) = delete;

  // Serves until the session ends (unmounted, or fuse_session_exit from a signal handler,
  // which interrupts the calling thread: the only one that takes the signals libfuse's
  // handlers are for). 0, or the negative errno of a failed read from the device.
  int run();

 private:
  struct Worker {
    RequestLoop* loop;
    pthread_t thread{};
    fuse_buf buf{};
  };
  enum class Turn { Reading, HandedOn, Ended };

  static void* work(void* worker);
  void serve(Worker& w);
  Turn read_and_answer(Worker& w);
  void before_long_wait() override;
  bool start_worker();  // with mutex_ held
  void end(int error);

  fuse_session* const se_;
  const unsigned max_threads_;
  std::mutex mutex_;
  std::condition_variable reader_wanted_;
  bool reading_ = false;  // a thread reads requests, or is about to
  bool stopping_ = false;
  unsigned idle_ = 0;
  std::list<Worker> workers_;  // joined by run(); a list, so that each keeps its address
  sem_t ended_;
  int error_ = 0;
};

}  // namespace digestfs::fs
