// A mount over tests/lying_fs, the lower filesystem that misbehaves when asked: started over
// the installed root at work/lie, stopped after the test's mount is gone.
#pragma once

#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>

#include "tests/support/mount_fixture.hpp"

namespace digestfs::test {

class LyingFsFixture : public MountFixture {
 protected:
  void TearDown() override {
    MountFixture::TearDown();
    stop_lying_fs();
  }
  // The lying server over the installed root, at work/lie; its lies about `lie_path` start at
  // byte `lie_from` (see tests/lying_fs).
  void start_lying_fs(const char* lie_path = "none", off_t lie_from = 0) {
    lie = work.path() / "lie";
    std::filesystem::create_directories(lie);
    struct stat outside;
    ASSERT_EQ(stat(work.path().c_str(), &outside), 0);
    lying_pid = fork();
    if (lying_pid == 0) {
      execl(DIGESTFS_LYING_FS, "lying-fs", root.c_str(), lie.c_str(), lie_path,
            std::to_string(lie_from).c_str(), nullptr);
      _exit(127);
    }
    // Up when its mount point is a filesystem of its own.
    ASSERT_TRUE(within(std::chrono::milliseconds(30000), [&] {
      struct stat st;
      return stat(lie.c_str(), &st) == 0 && st.st_dev != outside.st_dev;
    }));
  }
  void stop_lying_fs() {
    if (lying_pid <= 0) return;
    run_shell("fusermount3 -u -z " + lie.string() + " 2>/dev/null");
    waitpid(lying_pid, nullptr, 0);
    lying_pid = -1;
  }
  // Flips one of the lying server's switches (see tests/lying_fs): it answers once flipped.
  void ask_lying_fs(const char* attribute) {
    char answer[16];
    ASSERT_EQ(getxattr(lie.c_str(), attribute, answer, sizeof answer), 4) << std::strerror(errno);
  }
  std::filesystem::path lie;
  pid_t lying_pid = -1;
};

}  // namespace digestfs::test
