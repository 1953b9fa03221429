// One thread of another process held still, found by the name it carries (see
// src/base/thread_name.hpp): ptrace stops that thread only, the others run on. Let go when the
// object goes. What a test needs to see what the rest of the daemon does while, say, its
// watcher has not yet read an event.
#pragma once

#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <filesystem>
#include <string>

#include "tests/support/files.hpp"

namespace digestfs::test {

class HeldThread {
 public:
  HeldThread(pid_t pid, const std::string& name) {
    const auto tasks = std::filesystem::path("/proc") / std::to_string(pid) / "task";
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
      if (slurp(task.path() / "comm") != name + "\n") continue;
      const pid_t tid = static_cast<pid_t>(std::stol(task.path().filename().string()));
      if (ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) return;
      int status = 0;
      if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) == 0 &&
          waitpid(tid, &status, __WALL) == tid && WIFSTOPPED(status)) {
        tid_ = tid;
      } else {
        ptrace(PTRACE_DETACH, tid, nullptr, nullptr);
      }
      return;
    }
  }
  HeldThread(const HeldThread&) = delete;
  HeldThread& operator=(const HeldThread&) = delete;
  ~HeldThread() {
    if (tid_ > 0) ptrace(PTRACE_DETACH, tid_, nullptr, nullptr);
  }
  bool held() const { return tid_ > 0; }

 private:
  pid_t tid_ = -1;
};

}  // namespace digestfs::test
