// Faults: the lower filesystem changes or fails under the mount (or lists an entry it cannot
// find), the database disappears, the daemon is killed. Every case fails closed with a message
// that names the path and the reason, and the next mount (or reload) works.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <set>
#include <thread>

#include "tests/support/lying_fs_fixture.hpp"

namespace digestfs::test {
namespace {

using namespace std::chrono_literals;

class Faults : public MountFixture {
 protected:
  // 3,000 files in 30 directories, beneath the source.
  std::vector<std::filesystem::path> many_files() {
    std::vector<std::filesystem::path> files;
    for (int d = 0; d < 30; ++d) {
      for (int f = 0; f < 100; ++f) {
        auto p = std::filesystem::path("srv/many") / ("d" + std::to_string(d)) /
                 ("f" + std::to_string(f));
        std::filesystem::create_directories(root / p.parent_path());
        EXPECT_TRUE(write_text(root / p, p.string()));
        files.push_back(p);
      }
    }
    return files;
  }
  // Reads every file twice through the daemon limited to 512 fds; how many reads were right.
  size_t serve_twice(const std::vector<std::filesystem::path>& files) {
    EXPECT_NE(
        slurp("/proc/" + std::to_string(pid) + "/limits").find("Max open files            512"),
        std::string::npos)
        << "the daemon raised its limit: nothing here would be tested";
    size_t served = 0;
    for (int pass = 0; pass < 2; ++pass) {
      for (const auto& p : files) served += read_file(mnt / p).bytes == p.string();
      most_fds_ = std::max(most_fds_, open_fds(pid));
    }
    return served;
  }
  size_t most_fds_ = 0;
  // Opens the 256 MiB packaged file through the mount while `change` hits the lower file
  // during its hashing: as soon as the daemon's status says a hash is under way.
  template <class Change>
  ReadResult read_while(Change change) {
    install({fx / "rpms/dfs-large-1.0-1.noarch.rpm"});
    mount();
    std::thread changer([&] {
      ASSERT_TRUE(within(30000ms, [&] { return status_number("hashing") == 1; })) << status();
      change(root / kLarge);
    });
    auto r = read_file(mnt / kLarge);
    changer.join();
    return r;
  }
  void expect_denied_mid_hash(const ReadResult& r) {
    EXPECT_EQ(r.error, EACCES);
    EXPECT_TRUE(r.bytes.empty());
    EXPECT_NE(
        log_text().find("DENY path=/" + std::string(kLarge) + " reason=changed-while-hashing"),
        std::string::npos)
        << log_text();
  }
  // After the fault, a fresh mount serves trusted files as before.
  void expect_next_mount_works() {
    unmount();
    mount();
    EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").bytes, "trusted data, version 1\n")
        << log_text();
  }
  static constexpr const char* kLarge = "usr/share/dfslarge/large.bin";
};

TEST_F(Faults, AFileRemovedWhileHashedIsRefused) {
  expect_denied_mid_hash(read_while([](const auto& p) { ASSERT_EQ(unlink(p.c_str()), 0); }));
  // The kernel may still know the name for its entry timeout; then it is gone.
  EXPECT_TRUE(within(3000ms, [&] { return read_file(mnt / kLarge).error == ENOENT; }));
  expect_next_mount_works();
}

TEST_F(Faults, AFileMadeUnreadableWhileHashedIsRefusedUntilItsModeIsBack) {
  expect_denied_mid_hash(read_while([](const auto& p) { ASSERT_EQ(chmod(p.c_str(), 0), 0); }));
  ASSERT_EQ(chmod((root / kLarge).c_str(), 0644), 0);
  EXPECT_EQ(read_file(mnt / kLarge).error, 0) << "same content, its mode restored: verifies";
  expect_next_mount_works();
}

TEST_F(Faults, AFileTruncatedWhileHashedIsRefusedAndStaysRefused) {
  expect_denied_mid_hash(
      read_while([](const auto& p) { ASSERT_EQ(truncate(p.c_str(), 4096), 0); }));
  EXPECT_EQ(read_file(mnt / kLarge).error, EACCES);
  EXPECT_NE(log_text().find("reason=size-mismatch"), std::string::npos) << log_text();
  expect_next_mount_works();
}

// A full lower filesystem: writers through the mount get its ENOSPC, nothing else changes.
TEST_F(Faults, AFullLowerFilesystemGivesWritersEnospc) {
  const auto full = root / "var/full";
  std::filesystem::create_directories(full);
  ASSERT_EQ(::mount("tmpfs", full.c_str(), "tmpfs", 0, "size=64k"), 0) << std::strerror(errno);
  struct Unmount {
    std::filesystem::path at;
    ~Unmount() { umount2(at.c_str(), MNT_DETACH); }
  } unmount_full{full};
  mount();
  int fd = open((mnt / "var/full/blob").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  const std::string chunk(65536, 'z');
  ssize_t n = 0;
  for (int i = 0; i < 4 && n >= 0; ++i) n = write(fd, chunk.data(), chunk.size());
  EXPECT_EQ(n, -1);
  EXPECT_EQ(errno, ENOSPC);
  close(fd);
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").bytes, "trusted data, version 1\n");
  EXPECT_EQ(unlink((mnt / "var/full/blob").c_str()), 0);
  // Freed once the kernel forgets the inode (the daemon holds it until then).
  EXPECT_TRUE(within(3000ms, [&] {
    int small = open((mnt / "var/full/small").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    bool written = write(small, chunk.data(), 32768) == 32768;
    close(small);
    return written;
  })) << "space freed through the mount is usable again";
  expect_next_mount_works();
}

// More files than the daemon may hold fds for, with each node holding an fd: the kernel is
// asked to drop what it caches, and every file is served, twice over, with the daemon's fds
// under its limit.
TEST_F(Faults, ATreeWithMoreFilesThanTheDaemonMayOpenIsServedWhole) {
  const auto files = many_files();
  fd_limit = 512;
  mount(",unknown=allow,file-handles=no");
  EXPECT_EQ(serve_twice(files), 2 * files.size()) << log_text();
  EXPECT_LT(most_fds_, 512u);
  EXPECT_NE(log_text().find("open-file limit 512"), std::string::npos) << log_text();
  EXPECT_NE(status().find("\"nodes_kept_as\":\"fds\""), std::string::npos) << status();
  expect_next_mount_works();
}

// The same tree with nodes kept as file handles: no fd per node, nothing the kernel caches
// needs dropping, and the limit is never approached.
TEST_F(Faults, KeptAsFileHandlesATreeOfAnySizeCostsNoFdPerFile) {
  const auto files = many_files();
  fd_limit = 512;
  mount(",unknown=allow");
  ASSERT_NE(status().find("\"nodes_kept_as\":\"file handles\""), std::string::npos)
      << status() << " (connectable file handles need Linux 6.13)";
  EXPECT_EQ(serve_twice(files), 2 * files.size()) << log_text();
  EXPECT_GE(status_number("nodes"), files.size()) << "every file stays known to the kernel";
  EXPECT_LT(status_number("node_fds"), 16u);
  EXPECT_LT(most_fds_, 128u);
  EXPECT_EQ(log_text().find("open-file limit"), std::string::npos) << log_text();
  expect_next_mount_works();
}

// The database is renamed away and back, deleted and restored from a copy, while reloads are
// asked for: every failed reload keeps the last good snapshot and says why; once the database
// is back, reloads (and the automatic ones after a package change) work.
TEST_F(Faults, TheDatabaseVanishingDuringReloadsKeepsTheLastGoodSnapshot) {
  mount();
  const auto db = root / "var/lib/rpm";
  const auto away = root / "var/lib/rpm.away";
  std::atomic<bool> stop{false};
  std::string put_back_failed;  // librpm makes a missing database directory, even to read
  std::thread vanisher([&] {
    std::error_code ec;
    while (!stop && put_back_failed.empty()) {
      std::filesystem::rename(db, away, ec);
      std::this_thread::sleep_for(3ms);
      std::filesystem::rename(away, db, ec);
      if (ec) put_back_failed = ec.message();
      std::this_thread::sleep_for(2ms);
    }
  });
  std::atomic<uint64_t> wrong{0};
  for (int i = 0; i < 20; ++i) {
    kill(pid, SIGHUP);
    if (read_file(mnt / "usr/share/dfs/data.txt").error != 0) ++wrong;
    std::this_thread::sleep_for(50ms);
  }
  stop = true;
  vanisher.join();
  ASSERT_EQ(put_back_failed, "") << "a reload made a new database directory while it was away";
  EXPECT_EQ(wrong.load(), 0u) << "a vanished database must not take trusted files away";

  // Gone for good: the reload fails, the snapshot stays. Moved away in one step: a copy
  // taken while the reloads asked for above still read the database could meet a file of
  // sqlite's that the reading removes (cp then failed on a busy machine).
  std::error_code moved;
  std::filesystem::rename(db, away, moved);
  ASSERT_FALSE(moved) << moved.message();
  const uint64_t failures = status_number("reload_failures");
  kill(pid, SIGHUP);
  ASSERT_TRUE(within(3000ms, [&] { return status_number("reload_failures") > failures; }))
      << status() << log_text();
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, 0);
  EXPECT_NE(log_text().find("reload failed, keeping generation"), std::string::npos);
  EXPECT_NE(status().find(db.string()), std::string::npos) << "the reason names the database";

  // Restored from the copy (a new directory): package changes are seen again without SIGHUP.
  ASSERT_EQ(run_shell("cp -a " + away.string() + " " + db.string()), 0);
  install({fx / "rpms/dfs-other-1.0-1.noarch.rpm"});
  EXPECT_TRUE(within(3000ms, [&] { return read_file(mnt / "usr/share/dfs/other.txt").error == 0; }))
      << log_text();
  expect_next_mount_works();
}

// A killed daemon leaves a dead mount: reads fail (never pass), and a new digestfs on the
// same mount point (as systemd's Restart= does) replaces it, also over its own source.
TEST_F(Faults, AKilledDaemonFailsClosedAndTheNextMountReplacesIt) {
  mount("", root / "usr", root / "usr");
  ASSERT_EQ(read_file(root / "usr/share/dfs/data.txt").error, 0);
  kill_daemon(SIGKILL);
  EXPECT_EQ(read_file(root / "usr/share/dfs/data.txt").error, ENOTCONN);
  mount("", root / "usr", root / "usr");
  EXPECT_EQ(read_file(root / "usr/share/dfs/data.txt").bytes, "trusted data, version 1\n")
      << log_text();
  ASSERT_TRUE(write_text(root / "usr/share/dfs/data.txt", "tampered through the new mount\n"));
  EXPECT_EQ(read_file(root / "usr/share/dfs/data.txt").error, EACCES);
  EXPECT_NE(log_text().find("replaced the digestfs mount on"), std::string::npos) << log_text();
  unmount();
  EXPECT_FALSE(mounted(root / "usr")) << "both mounts are gone";
}

// The names a directory lists (without "." and ".."), and the errno its listing ended with.
std::pair<std::set<std::string>, int> listed(const std::filesystem::path& dir) {
  std::pair<std::set<std::string>, int> out{{}, 0};
  DIR* d = opendir(dir.c_str());
  if (!d) return {{}, errno};
  for (;;) {
    errno = 0;
    const dirent* e = readdir(d);
    if (!e) break;
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      out.first.insert(e->d_name);
    }
  }
  out.second = errno;
  closedir(d);
  return out;
}

class LowerListings : public LyingFsFixture {};

// What a listing read while its files are removed meets, made certain: a lower filesystem that
// lists a name it then cannot find. The listing through the mount is the lower's, that name
// too, and does not fail; looking the name up is the lower's ENOENT; the other entries have
// their attributes.
TEST_F(LowerListings, AnEntryTheLowerCannotFindIsListedAndTheListingGoesOn) {
  start_lying_fs();
  mount(",prefix=/", lie, mnt);
  ask_lying_fs("user.lying-fs.ghost");
  for (const char* dir : {"usr/share/dfs", "usr/bin"}) {
    const auto lower = listed(lie / dir);
    ASSERT_EQ(lower.second, 0);
    ASSERT_EQ(lower.first.count("lying-fs-ghost"), 1u) << "the lying server lists no ghost";
    const auto through = listed(mnt / dir);
    EXPECT_EQ(through.second, 0) << std::strerror(through.second);
    EXPECT_EQ(through.first, lower.first) << dir;
    struct stat st;
    EXPECT_EQ(lstat((mnt / dir / "lying-fs-ghost").c_str(), &st), -1);
    EXPECT_EQ(errno, ENOENT);
    for (const auto& name : lower.first) {
      if (name == "lying-fs-ghost") continue;
      struct stat theirs, ours;
      ASSERT_EQ(lstat((root / dir / name).c_str(), &theirs), 0) << name;
      ASSERT_EQ(lstat((mnt / dir / name).c_str(), &ours), 0) << name;
      EXPECT_EQ(ours.st_size, theirs.st_size) << name;
      EXPECT_EQ(ours.st_mode, theirs.st_mode) << name;
    }
  }
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").bytes, "trusted data, version 1\n")
      << log_text();
}

}  // namespace
}  // namespace digestfs::test
