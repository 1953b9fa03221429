// Package updates and reboots behind a running mount: reload on database changes, SIGHUP and
// request; a bad database keeps the last good snapshot; priming answers opens from memory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
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
