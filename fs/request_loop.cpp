#include "fs/request_loop.hpp"

#include <signal.h>

#include <cerrno>
#include <cstdlib>

namespace digestfs::fs {
namespace {
// Whether this thread handed reading on while it answered its request.
thread_local bool t_handed_on = false;
}  // namespace

RequestLoop::RequestLoop(fuse_session* se, unsigned max_threads)
    : se_(se), max_threads_(max_threads) {
  sem_init(&ended_, 0, 0);
}

RequestLoop::~RequestLoop() { sem_destroy(&ended_); }

int RequestLoop::run() {
  {
    std::lock_guard lock(mutex_);
    if (!start_worker()) return -errno;
  }
  // sem_wait returns early for a signal: the one that ended the session is seen here.
  while (!fuse_session_exited(se_)) sem_wait(&ended_);
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    // A thread blocked reading the device is ended there, the only place it may be (as in
    // libfuse's own loop): one answering a request finishes it first.
    for (Worker& w : workers_) pthread_cancel(w.thread);
  }
  reader_wanted_.notify_all();
  for (Worker& w : workers_) {
    pthread_join(w.thread, nullptr);
    std::free(w.buf.mem);
  }
  return error_;
}

bool RequestLoop::start_worker() {
  if (stopping_ || workers_.size() >= max_threads_) return false;
  Worker& w = workers_.emplace_back(Worker{this});
  // The signals that end the session or reload the index go to the thread in run().
  sigset_t blocked, old;
  sigemptyset(&blocked);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) sigaddset(&blocked, sig);
  pthread_sigmask(SIG_BLOCK, &blocked, &old);
  const int err = pthread_create(&w.thread, nullptr, &RequestLoop::work, &w);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (err != 0) {
    workers_.pop_back();
    errno = err;
    return false;
  }
  return true;
}

void* RequestLoop::work(void* worker) {
  auto& w = *static_cast<Worker*>(worker);
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, nullptr);
  w.loop->serve(w);
  return nullptr;
}

void RequestLoop::serve(Worker& w) {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      ++idle_;
      reader_wanted_.wait(lock, [&] { return stopping_ || !reading_; });
      --idle_;
      if (stopping_) return;
      reading_ = true;
    }
    Turn turn;
    while ((turn = read_and_answer(w)) == Turn::Reading) {
    }
    if (turn == Turn::Ended) return;
  }
}

RequestLoop::Turn RequestLoop::read_and_answer(Worker& w) {
  pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, nullptr);
  const int got = fuse_session_receive_buf(se_, &w.buf);
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, nullptr);
  if (got == -EINTR) return Turn::Reading;
  if (got <= 0) {
    end(got);
    return Turn::Ended;
  }
  t_handed_on = false;
  handle_long_waits(this);
  fuse_session_process_buf(se_, &w.buf);
  handle_long_waits(nullptr);
  if (t_handed_on) return Turn::HandedOn;
  if (fuse_session_exited(se_)) {
    end(0);
    return Turn::Ended;
  }
  return Turn::Reading;
}

void RequestLoop::before_long_wait() {
  t_handed_on = true;
  std::lock_guard lock(mutex_);
  reading_ = false;
  // With max_threads busy, nobody reads until one of them has answered.
  if (idle_ == 0) {
    start_worker();
  } else {
    reader_wanted_.notify_one();
  }
}

void RequestLoop::end(int error) {
  if (error < 0) {
    std::lock_guard lock(mutex_);
    error_ = error;
    fuse_session_exit(se_);
  }
  sem_post(&ended_);
}

}  // namespace digestfs::fs
