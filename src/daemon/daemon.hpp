// Detaching from the terminal before any thread starts (oneTBB's pool, the reloader) and
// still reporting a failure to mount: the parent waits until the child says it is mounted,
// or prints why it is not and exits non-zero.
#pragma once

#include <string>

#include "src/base/unique_fd.hpp"

namespace digestfs {

class Daemon {
 public:
  // Forks; returns in the child (and in the foreground, where nothing forks). The parent
  // exits from here with the child's verdict.
  explicit Daemon(bool foreground);
  // The mount is up: the parent exits 0, the child leaves the terminal.
  void ready();
  // The mount failed: the parent prints `why` and exits `code`. In the foreground nothing is
  // printed here: the event log has said it (EventLog::failure).
  [[noreturn]] void fail(const std::string& why, int code);

 private:
  bool foreground_;
  UniqueFd report_;  // child -> parent: one status byte, then the message
};

}  // namespace digestfs
