// Primer: after mounting, verifies every indexed regular file under the mount in the
// background (oneTBB, every core, idle I/O priority), so that opens after boot are answered
// from the memo. Opens never wait for the prime as a whole, only (rarely) for the one file
// being hashed at that moment.
#pragma once

#include <atomic>
#include <thread>

#include "src/daemon/event_log.hpp"
#include "src/daemon/integrity_checker.hpp"
#include "src/daemon/lower_path.hpp"

namespace digestfs {

struct PrimeProgress {
  uint64_t total = 0, files = 0, bytes = 0, failures = 0;
  uint64_t elapsed_ms = 0;  // of the whole prime, once done
  bool done = false;
};

class Primer {
 public:
  Primer(IntegrityChecker& checker, int source_fd, PathMapping paths, EventLog& log, unsigned jobs);
  ~Primer();
  Primer(const Primer&) = delete;
  Primer& operator=(const Primer&) = delete;

  void start();
  PrimeProgress progress() const;

 private:
  void run();
  void prime_one(const DigestIndex& index, uint32_t record, const std::string& prefix);
  IntegrityChecker& checker_;
  int source_fd_;
  PathMapping paths_;
  EventLog& log_;
  unsigned jobs_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> total_{0}, files_{0}, bytes_{0}, failures_{0};
  std::atomic<bool> done_{false};
  std::atomic<uint64_t> elapsed_ms_{0};
};

}  // namespace digestfs
