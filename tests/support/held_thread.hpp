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

class HeldThreads {
 public:
  HeldThreads(pid_t pid, const std::string& name) {
    const auto tasks = std::filesystem::path("/proc") / std::to_string(pid) / "task";
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
      if (slurp(task.path() / "comm") != name + "\n") continue;
      const pid_t tid = static_cast<pid_t>(std::stol(task.path().filename().string()));
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
  ~HeldThreads() {
    for (pid_t tid : held_) ptrace(PTRACE_DETACH, tid, nullptr, nullptr);
  }
  size_t count() const { return held_.size(); }

 private:
  std::vector<pid_t> held_;
};

}  // namespace digestfs::test
