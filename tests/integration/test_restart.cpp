// Restarts over its own source never show the unverified tree: readers hammer a tampered
// packaged file and a trusted one while the daemon is killed and restarted, stopped and
// started, and restarted with an index that cannot load, with both cores busy. Readiness is
// the new daemon's own status answer, never file content.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/support/held_thread.hpp"
#include "tests/support/mount_fixture.hpp"
#include "tests/support/rpm_root.hpp"

namespace digestfs::test {
namespace {

using namespace std::chrono_literals;

class Restart : public MountFixture {
 protected:
  void SetUp() override {
    MountFixture::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    usr = root / "usr";
    trusted = slurp(usr / "bin/dfs-hello");
    // Tampered with the same size, before any mount: only the unverified tree has these bytes.
    ASSERT_TRUE(write_text(usr / "share/dfs/data.txt", "trusted data, version X\n"));
  }
  void TearDown() override {
    stop = true;
    for (auto& t : threads) t.join();
    MountFixture::TearDown();
    EXPECT_EQ(tampered_served.load(), 0u) << "a reader was given the unverified tree's bytes";
    EXPECT_FALSE(slurp("/proc/self/mountinfo").find(usr.string()) != std::string::npos)
        << "a mount or the bind of the source is left";
  }
  void start() { mount("", usr, usr); }
  // Readers of both files, and two busy loops for the cores, until the test ends.
  void hammer() {
    threads.emplace_back([this] {
      while (!stop) {
        const int error = read_file(usr / "share/dfs/data.txt").error;
        if (error == 0) ++tampered_served;
        if (error == ENOTCONN) ++dead_answers;
        ++tampered_reads;
      }
    });
    threads.emplace_back([this] {
      while (!stop) {
        const ReadResult r = read_file(usr / "bin/dfs-hello");
        if (r.error == 0 && r.bytes != trusted) ++tampered_served;
      }
    });
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([this] {
        while (!stop) {
        }
      });
    }
  }
  std::filesystem::path usr;
  std::string trusted;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> tampered_served{0}, tampered_reads{0}, dead_answers{0};
  std::vector<std::thread> threads;
};

// A rootfs mounted over itself with its own database (root= the rootfs, as digestfs-run
// mounts a container's): the database lies in the source the mount hides. It is read through
// the bind of the source, never through the mount, where the daemon's reads would be judged
// like anyone's, and where a dead mount answers ENOTCONN to the daemon that replaces it.
class OverItsOwnRoot : public MountFixture {
 protected:
  void TearDown() override {
    MountFixture::TearDown();
    EXPECT_FALSE(slurp("/proc/self/mountinfo").find(root.string()) != std::string::npos)
        << "a mount or the bind of the source is left";
  }
  void start() { mount("", root, root); }
  // Where the daemon said it reaches the source.
  std::filesystem::path bind_of_the_source() {
    const std::string text = log_text(), said = " is reached through ";
    const auto at = text.find(said);
    if (at == std::string::npos) return {};
    const auto from = at + said.size();
    return text.substr(from, text.find('\n', from) - from);
  }
};

TEST_F(OverItsOwnRoot, ItsDatabaseIsReadThroughTheBindOfTheSource) {
  start();
  const auto data = root / "usr/share/dfs/data.txt", hello = root / "usr/bin/hello";
  ASSERT_EQ(read_file(data).bytes, "trusted data, version 1\n") << log_text();
  const auto bind = bind_of_the_source();
  ASSERT_FALSE(bind.empty()) << log_text();
  // The trust in data.txt goes, beneath the mount: the reload that follows must read the
  // database as it now is. (rpm takes the backslashes of the bind's name for escapes.)
  const auto beneath = work.path() / "beneath";
  std::filesystem::create_directory_symlink(bind, beneath);
  ASSERT_TRUE(rpm_in_root(beneath, "-e --justdb --nodeps --noscripts dfs-base"));
  EXPECT_TRUE(within(20s, [&] { return read_file(data).error == EACCES; })) << log_text();
  EXPECT_EQ(log_text().find("reload failed"), std::string::npos) << log_text();
  // A daemon that replaces the dead mount reads it there too.
  kill_daemon(SIGKILL);
  ASSERT_EQ(read_file(hello).error, ENOTCONN);
  start();
  EXPECT_TRUE(read_file(hello).bytes == slurp(bind / "usr/bin/hello")) << log_text();
  EXPECT_EQ(read_file(data).error, EACCES) << "trusted again by an outdated database";
}

// Named through a symlinked directory, the source and its database are the same as the mount
// table names them: a daemon that replaces the dead mount reads the database through the bind.
TEST_F(OverItsOwnRoot, NamedThroughASymlinkedDirectoryItsDatabaseIsReadThroughTheBind) {
  const auto link = work.path() / "link";
  std::filesystem::create_directory_symlink(work.path(), link);
  const auto named = link / "root";
  const auto data = root / "usr/share/dfs/data.txt";
  mount(",root=" + named.string(), named, named);
  ASSERT_EQ(read_file(data).bytes, "trusted data, version 1\n") << log_text();
  kill_daemon(SIGKILL);
  ASSERT_EQ(read_file(data).error, ENOTCONN);
  mount(",root=" + named.string(), named, named);
  EXPECT_EQ(read_file(data).bytes, "trusted data, version 1\n") << log_text();
}

TEST_F(Restart, TenKillsAndRestartsNeverShowTheSource) {
  start();
  hammer();
  for (int round = 0; round < 10; ++round) {
    kill_daemon(SIGKILL);
    EXPECT_EQ(read_file(usr / "bin/dfs-hello").error, ENOTCONN) << "the dead mount fails closed";
    start();
    EXPECT_EQ(read_file(usr / "bin/dfs-hello").bytes, trusted) << "round " << round;
  }
  EXPECT_GT(tampered_reads.load(), 100u);
  EXPECT_GT(dead_answers.load(), 0u) << "no reader met a restart: the test proves nothing";
  EXPECT_NE(log_text().find("replaced the digestfs mount on " + usr.string()), std::string::npos);
}

// systemd's stop, then its start: the stopped daemon leaves its mount failing closed for the
// next one; only an unmount takes it away.
TEST_F(Restart, AStoppedDaemonLeavesItsMountFailingClosedForTheNextOne) {
  start();
  hammer();
  kill_daemon(SIGTERM);
  EXPECT_EQ(read_file(usr / "bin/dfs-hello").error, ENOTCONN);
  EXPECT_EQ(status_pid(usr), -1);
  EXPECT_NE(log_text().find("stopping: the mount on " + usr.string() + " fails every access"),
            std::string::npos)
      << log_text();
  start();
  EXPECT_EQ(read_file(usr / "bin/dfs-hello").bytes, trusted);
}

// A stop signal that another thread of the daemon takes (the kernel picks another when the
// main thread has a signal pending already) still ends the loop, idle in its read of the next
// request: no request comes to wake it, only a signal on its own thread.
TEST_F(Restart, AStopSignalAnotherThreadTakesEndsTheIdleDaemon) {
  start();
  const std::vector<pid_t> watcher = threads_named(pid, "dfs-watcher");
  ASSERT_EQ(watcher.size(), 1u) << "no thread dfs-watcher in " << pid;
  ASSERT_EQ(syscall(SYS_tgkill, pid, watcher[0], SIGTERM), 0) << strerror(errno);
  const bool ended = daemon_ended_within(10s);
  if (!ended) kill_daemon(SIGKILL);
  EXPECT_TRUE(ended) << "the daemon did not end: " << log_text();
  EXPECT_NE(log_text().find("stopping: the mount on " + usr.string() + " fails every access"),
            std::string::npos)
      << log_text();
  start();  // and takes the mount it left away
  EXPECT_EQ(read_file(usr / "bin/dfs-hello").bytes, trusted);
}

// A new daemon whose index cannot be loaded does not touch the mount it would replace.
TEST_F(Restart, ARestartThatCannotLoadItsIndexLeavesTheDeadMountInPlace) {
  start();
  hammer();
  kill_daemon(SIGKILL);
  pid_t failing = fork();
  if (failing == 0) {
    const std::string opts =
        "keys=" + (work.path() / "no-keys").string() + ",root=" + root.string();
    execl(DIGESTFS_BINARY, "digestfs", "-f", "-o", opts.c_str(), usr.c_str(), usr.c_str(), nullptr);
    _exit(127);
  }
  int status = 0;
  waitpid(failing, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1);
  EXPECT_EQ(read_file(usr / "bin/dfs-hello").error, ENOTCONN) << "still the dead mount";
  start();
  EXPECT_EQ(read_file(usr / "bin/dfs-hello").bytes, trusted);
}

// One wrong key file or a damaged database rejects every package: such an index is no mount,
// over nothing and over a live mount alike.
TEST_F(Restart, AnIndexThatTrustsNoPackageNeitherMountsNorReplacesTheLiveMount) {
  start();
  hammer();
  // A real distribution's key, which signed none of these packages.
  const auto wrong_keys = work.path() / "wrong-keys";
  std::filesystem::create_directories(wrong_keys);
  const auto fedora = shared_rpm_data() / "keys/RPM-GPG-KEY-fedora-35-primary";
  DIGESTFS_REQUIRE(std::filesystem::exists(fedora), "the shared Fedora 35 key");
  std::filesystem::create_symlink(fedora, wrong_keys / fedora.filename());
  // In the foreground, and as a daemon whose parent tells why it did not mount.
  const auto over_itself = [&](const char* foreground) {
    return "timeout 60 " + std::string(DIGESTFS_BINARY) + foreground +
           " -o keys=" + wrong_keys.string() + ",root=" + root.string() + " " + usr.string() + " " +
           usr.string();
  };
  // Said once: in the event log, whose stderr is the foreground's, or by the waiting parent.
  const auto said_once = [](const std::string& err) {
    const std::string why = "digestfs: not mounting: no package is trusted: ";
    const auto at = err.find(why);
    return at != std::string::npos &&
           err.find("no package is trusted", at + why.size()) == std::string::npos;
  };
  const CommandOutput refused = run_captured(over_itself(" -f"));
  EXPECT_EQ(refused.status, 1) << refused.err;
  EXPECT_TRUE(said_once(refused.err)) << refused.err;
  EXPECT_NE(refused.err.find("REJECTED package="), std::string::npos) << refused.err;
  EXPECT_EQ(status_pid(usr), pid) << "the live mount was replaced";
  EXPECT_EQ(read_file(usr / "bin/dfs-hello").bytes, trusted);
  kill_daemon(SIGKILL);
  const CommandOutput over_dead = run_captured(over_itself(""));
  EXPECT_EQ(over_dead.status, 1) << over_dead.err;
  EXPECT_TRUE(said_once(over_dead.err)) << over_dead.err;
  EXPECT_EQ(read_file(usr / "bin/dfs-hello").error, ENOTCONN) << "still the dead mount";
  // With files no package claims allowed, the operator asked for what such a tree gives
  // (the tampered file too: the readers stop first).
  stop = true;
  for (auto& t : threads) t.join();
  threads.clear();
  mount(",unknown=allow,keys=" + wrong_keys.string(), usr, usr);
  EXPECT_EQ(read_file(usr / "bin/dfs-hello").bytes, trusted);
}

// A running mount can be replaced too (an upgrade): the old daemon ends once its mount is
// gone, and nothing in between serves the source.
TEST_F(Restart, ALiveMountIsReplacedAndItsDaemonEnds) {
  start();
  hammer();
  const pid_t old = pid;
  pid = -1;  // the next start is the fixture's daemon
  start();
  EXPECT_EQ(read_file(usr / "bin/dfs-hello").bytes, trusted);
  int status = 0;
  EXPECT_TRUE(within(30000ms, [&] { return waitpid(old, &status, WNOHANG) == old; }))
      << "the replaced daemon did not end";
  EXPECT_EQ(log_text().find(", with one of "), std::string::npos) << "a restart: " << log_text();
}

// A daemon of another source on a live mount is no restart: the tree found there changes, and
// the log says which it was and which it is.
using ReplacingTheSource = MountFixture;

TEST_F(ReplacingTheSource, ALiveMountOfAnotherSourceIsReplacedWithAWarning) {
  mount();
  const pid_t old = pid;
  pid = -1;
  const auto other = work.path() / "other";
  std::filesystem::create_directories(other);
  ASSERT_TRUE(write_text(other / "note.txt", "another tree\n"));
  mount(",unknown=allow", other, mnt);
  EXPECT_EQ(read_file(mnt / "note.txt").bytes, "another tree\n");
  EXPECT_NE(log_text().find("replaced the digestfs mount on " + mnt.string() + ", of " +
                            root.string() + ", with one of " + other.string()),
            std::string::npos)
      << log_text();
  int status = 0;
  EXPECT_TRUE(within(30000ms, [&] { return waitpid(old, &status, WNOHANG) == old; }))
      << "the replaced daemon did not end";
}

}  // namespace
}  // namespace digestfs::test
