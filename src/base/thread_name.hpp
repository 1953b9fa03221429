// The names the daemon's own threads carry, as ps -T, top -H and gdb show them (and as tests
// find a thread to hold it still): at most 15 characters.
#pragma once

#include <pthread.h>

#include <thread>

namespace digestfs {

// A thread that runs `body` under `name`.
template <class Body>
std::thread named_thread(const char* name, Body body) {
  return std::thread([name, body = std::move(body)]() mutable {
    pthread_setname_np(pthread_self(), name);
    body();
  });
}

}  // namespace digestfs
