// The names the daemon's own threads carry, as ps -T, top -H and gdb show them (and as tests
// find a thread to hold it still): at most 15 characters.
#pragma once

#include <pthread.h>

#include <thread>

namespace digestfs {

// A thread that runs `body` under `name`. Named by its maker before this returns, not by
// the thread itself once it first runs: whoever looks for it by name (a test holding it still)
// after the daemon answers finds every one of them.
template <class Body>
std::thread named_thread(const char* name, Body body) {
  std::thread t(std::move(body));
  pthread_setname_np(t.native_handle(), name);
  return t;
}

}  // namespace digestfs
