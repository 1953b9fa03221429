// Waits that may be long (hashing a file, another thread's hash of it, an index reload, the
// disk) announce themselves first. The FUSE loop reads requests on one thread at a time, and
// that thread answers what it read itself (fs/request_loop.hpp): registered as the thread's
// handler, it then hands reading on to another thread, so the requests behind a long wait are
// not held up by it. On any other thread, before_long_wait() does nothing.
#pragma once

#include <utility>

namespace digestfs {

class LongWaitHandler {
 public:
  virtual void before_long_wait() = 0;

 protected:
  ~LongWaitHandler() = default;
};

inline thread_local LongWaitHandler* t_long_wait_handler = nullptr;

// The handler of this thread's long waits from now on (nullptr: none).
inline void handle_long_waits(LongWaitHandler* handler) { t_long_wait_handler = handler; }

// Tells this thread's handler, once: the wait after this one finds no handler.
inline void before_long_wait() {
  if (LongWaitHandler* handler = std::exchange(t_long_wait_handler, nullptr)) {
    handler->before_long_wait();
  }
}

}  // namespace digestfs
