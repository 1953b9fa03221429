// The fixture every mount test uses: a root installed with `rpm --root R -i` from the real
// packages in ../shared/data/rpm and from packages signed at test time, the real digestfs
// binary mounted over it in a fresh temp dir, and on teardown a check for leftover mounts
// and fd leaks.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/files.hpp"
#include "tests/support/rpm_root.hpp"
#include "tests/support/test_env.hpp"

namespace digestfs::test {

inline bool mounted(const std::filesystem::path& where) {
  std::ifstream info("/proc/self/mountinfo");
  std::string line;
  while (std::getline(info, line)) {
    std::istringstream f(line);
    std::string a, b, c, d, mountpoint;
    f >> a >> b >> c >> d >> mountpoint;
    if (mountpoint == where.string()) return true;
  }
  return false;
}

// The status document (JSON) a digestfs mount answers on its root, or "" when none answers.
inline std::string status_of(const std::filesystem::path& mountpoint) {
  char buf[65536];
  ssize_t n = getxattr(mountpoint.c_str(), "user.digestfs.status", buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// The pid of the daemon whose mount answers at `mountpoint`, or -1 when none answers.
inline pid_t status_pid(const std::filesystem::path& mountpoint) {
  const std::string doc = status_of(mountpoint);
  const auto at = doc.find("\"pid\":");
  return at == std::string::npos ? -1 : static_cast<pid_t>(std::stol(doc.substr(at + 6)));
}

class MountFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    DIGESTFS_REQUIRE(access("/dev/fuse", R_OK | W_OK) == 0 && geteuid() == 0, "/dev/fuse as root");
    DIGESTFS_REQUIRE(!built_fixtures().empty(), "test fixtures (rpmbuild, rpmsign, gpg)");
    DIGESTFS_REQUIRE(std::filesystem::is_directory(shared_rpm_data()), "../shared/data/rpm");
    fx = built_fixtures();
    root = work.path() / "root";
    mnt = work.path() / "mnt";
    keys = work.path() / "keys";
    std::filesystem::create_directories(mnt);
    std::filesystem::create_directories(keys);
    std::filesystem::create_symlink(fx / "keys/RPM-GPG-KEY-digestfs-test", keys / "test.asc");
    std::filesystem::create_symlink(shared_rpm_data() / "keys/rpm.org-rsa-2048-test.pub",
                                    keys / "rpm.org.asc");
    install({fx / "rpms/dfs-base-1.0-1.noarch.rpm", fx / "rpms/dfs-foreign-1.0-1.noarch.rpm",
             shared_rpm_data() / "packages/hello-2.0-1.x86_64-signed.rpm"});
    fds_before = open_fds();
  }

  void TearDown() override {
    unmount();
    if (!mnt.empty()) {
      EXPECT_FALSE(mounted(mnt)) << "leftover mount at " << mnt;
    }
    if (fds_before) {
      EXPECT_EQ(open_fds(), fds_before) << "fd leak in the test process";
    }
  }

  void install(const std::vector<std::filesystem::path>& rpms) {
    ASSERT_TRUE(install_into_root(root, rpms));
  }

  // Starts digestfs in the foreground and waits until the mount is there.
  void mount(const std::string& extra = "", std::filesystem::path source = {},
             std::filesystem::path at = {}) {
    if (source.empty()) source = root;
    if (at.empty()) at = mnt;
    mounted_at = at;
    log = work.path() / "digestfs.log";
    pid = fork();
    if (pid == 0) {
      int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(out, 2);
      if (fd_limit) {
        // Without CAP_SYS_RESOURCE the daemon cannot raise the limit set here.
        prctl(PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0);
        struct rlimit limit {
          fd_limit, fd_limit
        };
        setrlimit(RLIMIT_NOFILE, &limit);
      }
      // As systemd starts it: the caller's umask must be what counts, never the daemon's.
      umask(022);
      std::string opts = "keys=" + keys.string() + ",root=" + root.string() + extra;
      execl(DIGESTFS_BINARY, "digestfs", "-f", "-o", opts.c_str(), source.c_str(), at.c_str(),
            nullptr);
      _exit(127);
    }
    // Up means: the mount point answers with this daemon's own status. Neither the bare
    // directory, nor a dead mount, nor an earlier daemon's mount can give that answer.
    const auto start = std::chrono::steady_clock::now();
    while (status_pid(at) != pid) {
      int status;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        FAIL() << "digestfs exited before mounting: " << slurp(log);
      }
      if (std::chrono::steady_clock::now() - start > std::chrono::seconds(60)) {
        FAIL() << "digestfs did not answer on " << at << " within 60 s: " << slurp(log);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // Ends the daemon with `sig` (SIGKILL: its mount is left dead) and waits for it.
  void kill_daemon(int sig) {
    ASSERT_EQ(kill(pid, sig), 0);
    waitpid(pid, nullptr, 0);
    pid = -1;
  }

  // Whether the daemon, told to end, has ended within `limit` (then it is reaped).
  bool daemon_ended_within(std::chrono::milliseconds limit) {
    if (!within(limit, [&] { return waitpid(pid, nullptr, WNOHANG) == pid; })) return false;
    pid = -1;
    return true;
  }

  void unmount() {
    if (pid <= 0) return;
    // A test that failed may still hold a file open there: then the mount goes lazily, and
    // the daemon ends once that file is closed.
    if (run_shell("fusermount3 -u " + mounted_at.string() + " 2>/dev/null") != 0) {
      run_shell("fusermount3 -u -z " + mounted_at.string() + " 2>/dev/null");
      // It ends once the test closes what it holds; a test that never does gets it killed.
      if (!within(std::chrono::milliseconds(10000),
                  [&] { return waitpid(pid, nullptr, WNOHANG) == pid; })) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
      pid = -1;
      return;
    }
    waitpid(pid, nullptr, 0);
    pid = -1;
  }

  std::string log_text() { return slurp(log); }

  // The status document (JSON) of the running mount.
  std::string status() { return status_of(mnt); }

  // Polls until pred() holds; how long it took, or nothing after `limit`.
  template <class Pred>
  std::optional<std::chrono::milliseconds> within(std::chrono::milliseconds limit, Pred pred) {
    auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < limit) {
      if (pred()) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - start);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::nullopt;
  }

  // One number of the status document, or UINT64_MAX when it is not there.
  uint64_t status_number(const std::string& key) {
    const std::string s = status();
    auto at = s.find("\"" + key + "\":");
    if (at == std::string::npos) return UINT64_MAX;
    return std::stoull(s.substr(at + key.size() + 3));
  }

  TempDir work;
  std::filesystem::path fx, root, mnt, keys, log, mounted_at;
  pid_t pid = -1;
  size_t fds_before = 0;
  rlim_t fd_limit = 0;  // when set, the daemon's open-file limit, which it may not raise
};

}  // namespace digestfs::test
