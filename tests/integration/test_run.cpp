// digestfs-run on a container rootfs built at test time from a signed package that wraps
// Debian's static busybox: commands run, exit statuses propagate, tampered files and binaries
// are refused, a dead daemon fails closed, and nothing stays mounted or running afterwards.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/mount_fixture.hpp"

namespace digestfs::test {
namespace {

// Processes (other than this one) whose command line mentions `text`.
int processes_mentioning(const std::string& text) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = e.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos ||
        pid == std::to_string(getpid())) {
      continue;
    }
    if (slurp(e.path() / "cmdline").find(text) != std::string::npos) ++n;
  }
  return n;
}

class Run : public ::testing::Test {
 protected:
  void SetUp() override {
    DIGESTFS_REQUIRE(access("/dev/fuse", R_OK | W_OK) == 0 && geteuid() == 0, "/dev/fuse as root");
    DIGESTFS_REQUIRE(!built_fixtures().empty(),
                     "test fixtures (rpmbuild, rpmsign, busybox-static)");
    rootfs = work.path() / "rootfs";
    ASSERT_TRUE(rpm_in_root(rootfs, "-i --nodeps --noscripts",
                            {built_fixtures() / "rpms/dfs-busybox-1.0-1.noarch.rpm"}));
  }
  void TearDown() override {
    if (rootfs.empty()) return;
    EXPECT_EQ(slurp("/proc/self/mountinfo").find(rootfs.string()), std::string::npos)
        << "something is still mounted in " << rootfs;
    EXPECT_EQ(processes_mentioning(rootfs.string()), 0)
        << "a process is still running for " << rootfs;
  }
  CommandOutput run(const std::string& args, const std::filesystem::path& keys = {}) {
    const auto out = work.path() / "out", err = work.path() / "err";
    int status = run_shell(std::string(DIGESTFS_RUN_BINARY) + " --rootfs " + rootfs.string() +
                           " --keys " + (keys.empty() ? built_fixtures() / "keys" : keys).string() +
                           " " + args + " >" + out.string() + " 2>" + err.string());
    return {status, slurp(out), slurp(err)};
  }
  TempDir work;
  std::filesystem::path rootfs;
};

TEST_F(Run, RunsTheCommandInsideAndPropagatesItsExitStatus) {
  CommandOutput r = run("-- /bin/sh -c 'cat /data/hello.txt; echo pid=$$; exit 3'");
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_EQ(r.out, "hello from the container\npid=1\n") << "a new PID namespace";
  EXPECT_EQ(r.err, "") << "the daemon's notices go to syslog, as container runtimes keep theirs";
  CommandOutput verbose = run("--verbose -- /bin/sh -c 'exit 0'");
  EXPECT_EQ(verbose.status, 0);
  EXPECT_NE(verbose.err.find("digestfs: mounted "), std::string::npos) << verbose.err;
}

TEST_F(Run, ATamperedFileIsRefusedInsideAndTheLogNamesIt) {
  ASSERT_TRUE(write_text(rootfs / "data/hello.txt", "hello from the attacker!\n"));
  CommandOutput r = run("-- /bin/sh -c 'cat /data/hello.txt'");
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(r.out.empty());
  EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("DENY path=/data/hello.txt"), std::string::npos) << r.err;
}

TEST_F(Run, ATamperedBinaryCannotStartAndDigestfsRunSaysWhy) {
  {
    std::fstream f(rootfs / "bin/busybox", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    f << 'X';
  }
  CommandOutput r = run("-- /bin/sh -c 'echo never'");
  EXPECT_EQ(r.status, 126);
  EXPECT_TRUE(r.out.empty());
  EXPECT_NE(r.err.find("cannot execute /bin/sh: Permission denied (refused by digestfs"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("DENY path=/bin/busybox reason=digest-mismatch"), std::string::npos);
}

TEST_F(Run, KillingTheDaemonFailsClosed) {
  // Killed once the container has read its file (its output says so), while it sleeps.
  std::thread killer([this] {
    for (int i = 0; i < 3000 && slurp(work.path() / "out").empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    run_shell("pkill -9 -f -- 'digestfs -f (-q )?--root " + rootfs.string() + "'");
  });
  CommandOutput r =
      run("-- /bin/sh -c 'cat /data/hello.txt; sleep 20; cat /data/hello.txt || echo READ-FAILED'");
  killer.join();
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.out.find("hello from the container\n"), 0u) << r.out;
  EXPECT_EQ(r.out.find("hello from the container\nhello"), std::string::npos) << "no second read";
  EXPECT_NE(r.err.find("the digestfs daemon died"), std::string::npos) << r.err;
}

TEST_F(Run, UntrustedOrUnpackagedRootfsIsRefusedUnlessAllowed) {
  CommandOutput untrusted = run("-- /bin/sh -c 'echo ran'", built_fixtures() / "other-keys");
  EXPECT_EQ(untrusted.status, 125);
  EXPECT_NE(untrusted.err.find("no package in its rpm database is signed by a trusted key"),
            std::string::npos)
      << untrusted.err;
  CommandOutput allowed = run("--allow-unpackaged-rootfs --unknown allow -- /bin/sh -c 'echo ran'",
                              built_fixtures() / "other-keys");
  EXPECT_EQ(allowed.status, 0) << allowed.err;
  EXPECT_EQ(allowed.out, "ran\n");
  std::filesystem::remove_all(rootfs / "var/lib/rpm");
  CommandOutput no_db = run("-- /bin/sh");
  EXPECT_EQ(no_db.status, 125);
  EXPECT_NE(no_db.err.find("no rpm database"), std::string::npos) << no_db.err;
}

TEST_F(Run, MountOnlyServesTheVerifiedTreeToOtherRuntimes) {
  const auto mnt = work.path() / "mnt";
  std::filesystem::create_directories(mnt);
  pid_t pid = fork();
  if (pid == 0) {
    execl(DIGESTFS_RUN_BINARY, "digestfs-run", "--rootfs", rootfs.c_str(), "--keys",
          (built_fixtures() / "keys").c_str(), "--mount-only", mnt.c_str(), nullptr);
    _exit(127);
  }
  for (int i = 0; i < 6000 && status_pid(mnt) <= 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(slurp(mnt / "data/hello.txt"), "hello from the container\n");
  ASSERT_TRUE(write_text(rootfs / "data/hello.txt", "tampered\n"));
  std::ifstream tampered(mnt / "data/hello.txt");
  EXPECT_FALSE(tampered.is_open());
  EXPECT_EQ(run_shell("fusermount3 -u " + mnt.string()), 0);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace digestfs::test
