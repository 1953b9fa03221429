// The threads of another process that carry one name (see src/base/thread_name.hpp), held
// still: ptrace stops those threads only, the others run on. Let go when the object goes.
// What a test needs to see what the rest of the daemon does while, say, its watcher has not
// yet read an event, or while no waiting thread can take a request.
#pragma once

#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/files.hpp"

namespace digestfs::test {

// The ids of the threads of `pid` that carry `name`.
inline std::vector<pid_t> threads_named(pid_t pid, const std::string& name) {
  std::vector<pid_t> tids;
  const auto tasks = std::filesystem::path("/proc") / std::to_string(pid) / "task";
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    if (slurp(task.path() / "comm") != name + "\n") continue;
    tids.push_back(static_cast<pid_t>(std::stol(task.path().filename().string())));
  }
  return tids;
}

class HeldThreads {
 public:
  HeldThreads(pid_t pid, const std::string& name) {
    for (const pid_t tid : threads_named(pid, name)) {
      if (ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) continue;
      int status = 0;
      if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) == 0 &&
          waitpid(tid, &status, __WALL) == tid && WIFSTOPPED(status)) {
        held_.push_back(tid);
      } else {
        ptrace(PTRACE_DETACH, tid, nullptr, nullptr);
      }
    }
  }
  HeldThreads(const HeldThreads&) = delete;
  HeldThreads& operator=(const HeldThreads&) = delete;
  ~HeldThreads() { let_go(); }
  void let_go() {
    for (pid_t tid : held_) ptrace(PTRACE_DETACH, tid, nullptr, nullptr);
    held_.clear();
  }
  size_t count() const { return held_.size(); }

 private:
  std::vector<pid_t> held_;
};

}  // namespace digestfs::test
