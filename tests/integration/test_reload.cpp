// Package updates and reboots behind a running mount: reload on database changes, SIGHUP and
// request; a bad database keeps the last good snapshot; priming answers opens from memory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "tests/support/mount_fixture.hpp"

namespace digestfs::test {
namespace {

using namespace std::chrono_literals;

using Reload = MountFixture;

TEST_F(Reload, APackageInstalledBehindTheMountIsReadableWithinTwoSeconds) {
  mount();
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/other.txt").error, ENOENT);
  install({fx / "rpms/dfs-other-1.0-1.noarch.rpm"});
  auto took = within(2000ms, [&] { return read_file(mnt / "usr/share/dfs/other.txt").error == 0; });
  ASSERT_TRUE(took.has_value()) << log_text();
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/other.txt").bytes, "other data\n");
  EXPECT_GE(status_number("generation"), 2u);
}

TEST_F(Reload, ARemovedPackagesFilesBecomeUnknown) {
  install({fx / "rpms/dfs-other-1.0-1.noarch.rpm"});
  mount();
  ASSERT_EQ(read_file(mnt / "usr/share/dfs/other.txt").error, 0);
  // --justdb leaves the file where it is: only the trust in it goes away.
  ASSERT_TRUE(rpm_in_root(root, "-e --justdb --nodeps --noscripts dfs-other"));
  auto took =
      within(2000ms, [&] { return read_file(mnt / "usr/share/dfs/other.txt").error == EACCES; });
  EXPECT_TRUE(took.has_value()) << log_text();
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, 0) << "other packages stay trusted";
}

TEST_F(Reload, AnUpgradedFilePassesAndItsOldContentIsRefused) {
  mount();
  const std::string v1 = read_file(mnt / "usr/share/dfs/data.txt").bytes;
  ASSERT_EQ(v1, "trusted data, version 1\n");
  ASSERT_TRUE(rpm_in_root(root, "-U --nodeps --noscripts --nosignature",
                          {fx / "upgrade/dfs-base-2.0-1.noarch.rpm"}));
  auto took = within(2000ms, [&] {
    return read_file(mnt / "usr/share/dfs/data.txt").bytes == "trusted data, version 2\n";
  });
  ASSERT_TRUE(took.has_value()) << log_text();
  ASSERT_TRUE(write_text(root / "usr/share/dfs/data.txt", v1));
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, EACCES);
}

TEST_F(Reload, ACorruptDatabaseKeepsTheLastGoodSnapshot) {
  mount();
  ASSERT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, 0);
  const auto db = root / "var/lib/rpm";
  for (const auto& e : std::filesystem::directory_iterator(db)) {
    if (e.path().filename().string().starts_with("rpmdb.sqlite")) std::filesystem::remove(e.path());
  }
  ASSERT_TRUE(write_text(db / "rpmdb.sqlite", std::string(65536, 'x')));
  auto failed = within(2000ms, [&] { return status_number("reload_failures") >= 1; });
  ASSERT_TRUE(failed.has_value()) << status();
  EXPECT_EQ(status_number("generation"), 1u);
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, 0);
  EXPECT_NE(log_text().find("reload failed, keeping generation 1"), std::string::npos)
      << log_text();
}

TEST_F(Reload, SighupDuringHeavyConcurrentOpensLosesNothing) {
  mount();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0}, wrong{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&] {
      while (!stop) {
        auto r = read_file(mnt / "usr/share/dfs/data.txt");
        if (r.error || r.bytes != "trusted data, version 1\n") ++wrong;
        ++reads;
      }
    });
  }
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(kill(pid, SIGHUP), 0);
    std::this_thread::sleep_for(100ms);
  }
  auto reloaded = within(3000ms, [&] { return status_number("reloads") >= 1; });
  stop = true;
  for (auto& t : readers) t.join();
  ASSERT_TRUE(reloaded.has_value()) << status();
  EXPECT_GT(reads.load(), 100u);
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_TRUE(mounted(mnt)) << "SIGHUP must not end the mount";
}

TEST_F(Reload, AnExplicitRequestReloads) {
  mount();
  ASSERT_EQ(run_shell(std::string(DIGESTFS_CACHE_BINARY) + " reload " + mnt.string()), 0);
  auto took = within(2000ms, [&] { return status_number("generation") == 2; });
  EXPECT_TRUE(took.has_value()) << status();
  // Reading the database must not look like a change to it: no reload feeds the next.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(status_number("generation"), 2u) << log_text();
}

TEST_F(Reload, APrimedMountAnswersEveryOpenFromMemory) {
  install({fx / "rpms/dfs-large-1.0-1.noarch.rpm"});
  mount(",prime");
  auto done =
      within(10000ms, [&] { return status().find("\"prime_done\":true") != std::string::npos; });
  ASSERT_TRUE(done.has_value()) << status();
  for (const char* p : {"usr/share/dfs/data.txt", "usr/share/dfs/big.bin", "usr/bin/dfs-hello",
                        "usr/share/dfslarge/large.bin", "usr/bin/hello"}) {
    EXPECT_EQ(read_file(mnt / p).error, 0) << p;
  }
  EXPECT_EQ(status_number("memo_misses"), 0u) << status();
  EXPECT_EQ(status_number("memo_hits"), 5u) << status();
  EXPECT_EQ(status_number("prime_failures"), 0u) << status();
}

}  // namespace
}  // namespace digestfs::test

namespace digestfs::test {
namespace {

// Packages installed, upgraded and erased behind a running mount, their files opened the
// moment rpm returns: never refused for being new, and what is gone or replaced is refused.
class InstallAndRun : public MountFixture {
 protected:
  // rpm, with digestfs's plugin loaded or not (rpm loads the plugins it finds in its plugin
  // directory that a __transaction_ macro names).
  ::testing::AssertionResult rpm(const std::string& args,
                                 const std::vector<std::filesystem::path>& files = {}) {
    const std::string dir = std::filesystem::path(DIGESTFS_RPM_PLUGIN).parent_path().string();
    const std::string plugin = with_plugin ? "--define '__plugindir " + dir +
                                                 "' --define '__transaction_digestfs " +
                                                 DIGESTFS_RPM_PLUGIN + "' "
                                           : std::string();
    return rpm_in_root(root, plugin + args, files);
  }
  // 50 rounds: an upgrade, a downgrade, an install and an erase each, every file opened at
  // once.
  void rounds() {
    mount();
    const std::string update = "-U --oldpackage --nodeps --noscripts --nosignature";
    for (int round = 0; round < 50; ++round) {
      const bool two = round % 2 == 0;
      ASSERT_TRUE(rpm(update, {two ? fx / "upgrade/dfs-base-2.0-1.noarch.rpm"
                                   : fx / "rpms/dfs-base-1.0-1.noarch.rpm"}));
      const std::string version = two ? "2" : "1";
      uint64_t waits = status_number("reload_waits");
      const ReadResult data = read_file(mnt / "usr/share/dfs/data.txt");
      ASSERT_EQ(data.error, 0) << "round " << round << "\n" << log_text();
      ASSERT_EQ(data.bytes, "trusted data, version " + version + "\n");
      ASSERT_EQ(run_shell((mnt / "usr/bin/dfs-hello").string() + " >/dev/null"), 0);
      waits_for_installed += status_number("reload_waits") - waits;
      if (round % 2) {
        ASSERT_TRUE(rpm("-i --replacepkgs --replacefiles --nodeps --noscripts --nosignature",
                        {fx / "rpms/dfs-other-1.0-1.noarch.rpm"}));
        waits = status_number("reload_waits");
        ASSERT_EQ(read_file(mnt / "usr/share/dfs/other.txt").bytes, "other data\n")
            << "round " << round << "\n"
            << log_text();
        waits_for_installed += status_number("reload_waits") - waits;
        // Erased from the database (the file stays): its file is unknown, with the plugin at
        // once, without it once the watch on the database has seen the change.
        ASSERT_TRUE(rpm("-e --justdb --nodeps --noscripts dfs-other"));
        if (with_plugin) {
          ASSERT_EQ(read_file(mnt / "usr/share/dfs/other.txt").error, EACCES) << "round " << round;
        } else {
          ASSERT_TRUE(within(
              5000ms, [&] { return read_file(mnt / "usr/share/dfs/other.txt").error == EACCES; }))
              << "round " << round;
        }
      }
    }
    // The content of the version before is refused.
    ASSERT_TRUE(write_text(root / "usr/share/dfs/data.txt", "trusted data, version 2\n"));
    EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, EACCES);
    EXPECT_EQ(status_number("reload_wait_timeouts"), 0u) << status();
  }
  bool with_plugin = false;
  uint64_t waits_for_installed = 0;  // opens of installed files that waited for a reload
};

TEST_F(InstallAndRun, WithoutThePluginAnOpenRacingTheReloadWaitsForIt) {
  rounds();
  EXPECT_GT(waits_for_installed, 0u) << "no open raced a reload: nothing was shown";
}

TEST_F(InstallAndRun, WithThePluginTheTransactionEndsOnceTheNewIndexIsInForce) {
  with_plugin = true;
  rounds();
  // Every installed file was trusted before rpm returned: none of their opens had to wait.
  EXPECT_EQ(waits_for_installed, 0u) << status();
}

// A refusal asks the sources only when their watches cannot vouch that nothing changed: a
// watched directory that is moved away leaves the path unwatched, and a package directory put
// in its place is still seen by the next open.
TEST_F(InstallAndRun, APackageDirectoryPutInPlaceOfTheWatchedOneIsSeenByTheNextOpen) {
  const auto packages = work.path() / "extra-packages";
  std::filesystem::create_directories(packages);
  ASSERT_TRUE(write_text(root / "usr/share/dfs/other.txt", "other data\n"));
  mount(",packages=" + packages.string());
  ASSERT_EQ(read_file(mnt / "usr/share/dfs/other.txt").error, EACCES);
  std::filesystem::rename(packages, work.path() / "extra-packages.old");
  std::filesystem::create_directories(packages);
  std::filesystem::copy_file(fx / "rpms/dfs-other-1.0-1.noarch.rpm",
                             packages / "dfs-other-1.0-1.noarch.rpm");
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/other.txt").bytes, "other data\n") << log_text();
}

// A reload that hangs (here on a package file that is a FIFO nobody writes): an open waiting
// for it gives up after reload-wait, says so, and everything else is served meanwhile.
TEST_F(InstallAndRun, AStuckReloadMakesAWaitingOpenGiveUpAfterTheBound) {
  const auto packages = work.path() / "extra-packages";
  std::filesystem::create_directories(packages);
  ASSERT_TRUE(write_text(root / "usr/share/dfs/stray.txt", "nobody packaged me\n"));
  mount(",packages=" + packages.string() + ",reload-wait=1500");
  ASSERT_EQ(mkfifo((packages / "stuck.rpm").c_str(), 0644), 0);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/stray.txt").error, EACCES);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1500ms) << "it did not wait";
  EXPECT_NE(log_text().find("DENY path=/usr/share/dfs/stray.txt reason=no-entry reload=unfinished"),
            std::string::npos)
      << log_text();
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").bytes, "trusted data, version 1\n");
  EXPECT_GE(status_number("reload_wait_timeouts"), 1u) << status();
  // Let the reload go on: the FIFO ends at once (and is no package).
  int writer = open((packages / "stuck.rpm").c_str(), O_WRONLY | O_CLOEXEC);
  EXPECT_GE(writer, 0);
  close(writer);
  EXPECT_TRUE(within(
      10000ms, [&] { return status_number("reload_failures") + status_number("reloads") >= 1; }));
}

}  // namespace
}  // namespace digestfs::test
