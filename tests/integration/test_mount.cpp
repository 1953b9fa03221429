// Mounts the real digestfs binary over trees installed with `rpm --root R -i` from the real
// packages in ../shared/data/rpm and from packages signed at test time, and checks errno and
// bytes of what a reader gets. Teardown checks for leftover mounts and fd leaks.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/unit/test_env.hpp"

namespace digestfs::test {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool mounted(const std::filesystem::path& where) {
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

size_t open_fds() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// Reads a file through the mount: bytes, or the errno of open/read.
struct ReadResult {
  int error = 0;
  std::string bytes;
};
ReadResult read_file(const std::filesystem::path& p) {
  ReadResult r;
  int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    r.error = errno;
    return r;
  }
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) r.bytes.append(buf, static_cast<size_t>(n));
  if (n < 0) r.error = errno;
  close(fd);
  return r;
}

class Mount : public ::testing::Test {
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
    std::string cmd = "rpm --root " + root.string() +
                      " --dbpath /var/lib/rpm -i --nodeps --noscripts --nosignature --replacefiles";
    for (const auto& r : rpms) cmd += " " + r.string();
    ASSERT_EQ(run_shell(cmd + " >/dev/null 2>&1"), 0) << cmd;
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
      std::string opts = "keys=" + keys.string() + ",root=" + root.string() + extra;
      execl(DIGESTFS_BINARY, "digestfs", "-f", "-o", opts.c_str(), source.c_str(), at.c_str(),
            nullptr);
      _exit(127);
    }
    for (int i = 0; i < 200 && !mounted(at); ++i) {
      int status;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        FAIL() << "digestfs exited before mounting: " << slurp(log);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ASSERT_TRUE(mounted(at)) << slurp(log);
  }

  void unmount() {
    if (pid <= 0) return;
    run_shell("fusermount3 -u " + mounted_at.string() + " 2>/dev/null");
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
  }

  std::string log_text() { return slurp(log); }

  TempDir work;
  std::filesystem::path fx, root, mnt, keys, log, mounted_at;
  pid_t pid = -1;
  size_t fds_before = 0;
};

TEST_F(Mount, UnchangedFilesReadExactly) {
  mount();
  for (const char* p : {"usr/share/dfs/data.txt", "usr/bin/hello", "usr/share/dfs/big.bin",
                        "usr/share/doc/hello-2.0/README"}) {
    auto r = read_file(mnt / p);
    EXPECT_EQ(r.error, 0) << p << "\n" << log_text();
    EXPECT_EQ(r.bytes, slurp(root / p)) << p;
  }
}

TEST_F(Mount, ContentChangedWithTheSameSizeIsRefused) {
  std::ofstream(root / "usr/share/dfs/data.txt") << "trusted data, version X\n";
  mount();
  auto r = read_file(mnt / "usr/share/dfs/data.txt");
  EXPECT_EQ(r.error, EACCES);
  EXPECT_TRUE(r.bytes.empty());
  const std::string log = log_text();
  EXPECT_NE(log.find("DENY path=/usr/share/dfs/data.txt reason=digest-mismatch"), std::string::npos) << log;
  EXPECT_NE(log.find("expected=sha256:"), std::string::npos);
  EXPECT_NE(log.find("actual=sha256:"), std::string::npos);
  EXPECT_NE(log.find("package=dfs-base-1.0-1.noarch"), std::string::npos);
}

TEST_F(Mount, ChangedThenTimeSetBackIsRefused) {
  mount();
  ASSERT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, 0);
  const auto f = root / "usr/share/dfs/data.txt";
  ASSERT_EQ(run_shell("cp -p " + f.string() + " " + (work.path() / "ref").string()), 0);
  std::ofstream(f) << "trusted data, version Y\n";
  ASSERT_EQ(run_shell("touch -r " + (work.path() / "ref").string() + " " + f.string()), 0);
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, EACCES);
}

TEST_F(Mount, TruncatedAndAppendedFilesAreRefused) {
  ASSERT_EQ(truncate((root / "usr/share/dfs/data.txt").c_str(), 5), 0);
  std::ofstream(root / "usr/share/doc/hello-2.0/README", std::ios::app) << "appended\n";
  mount();
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, EACCES);
  EXPECT_EQ(read_file(mnt / "usr/share/doc/hello-2.0/README").error, EACCES);
}

TEST_F(Mount, AFileReplacedByRenameIsRefused) {
  mount();
  ASSERT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, 0);
  std::ofstream(root / "usr/share/dfs/new") << "replacement, same length!\n";
  std::filesystem::rename(root / "usr/share/dfs/new", root / "usr/share/dfs/data.txt");
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, EACCES);
}

TEST_F(Mount, ASignedFileHardLinkedOverAnotherPathIsJudgedByThatPath) {
  std::filesystem::remove(root / "usr/share/dfs/data.txt");
  std::filesystem::create_hard_link(root / "usr/bin/hello", root / "usr/share/dfs/data.txt");
  mount();
  EXPECT_EQ(read_file(mnt / "usr/bin/hello").error, 0);
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, EACCES);
  EXPECT_EQ(read_file(mnt / "usr/bin/hello").error, 0);
}

TEST_F(Mount, ARepointedPackagedSymlinkIsRefused) {
  mount();
  char buf[256];
  ssize_t n = readlink((mnt / "usr/share/dfs/hello-link").c_str(), buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "../../bin/dfs-hello");
  std::filesystem::remove(root / "usr/share/dfs/hello-link");
  std::filesystem::create_symlink("/etc/shadow", root / "usr/share/dfs/hello-link");
  // A fresh lookup sees the new link (entry cache expires after a second).
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  errno = 0;
  EXPECT_EQ(readlink((mnt / "usr/share/dfs/hello-link").c_str(), buf, sizeof buf), -1);
  EXPECT_EQ(errno, EACCES);
}

TEST_F(Mount, UnknownFilesFollowTheUnknownPolicy) {
  std::ofstream(root / "usr/share/dfs/stray.txt") << "nobody packaged me\n";
  std::ofstream(root / "usr/share/dfs/allowed.txt") << "allowed by glob\n";
  mount(",unknown-allow=/usr/share/dfs/allowed.*");
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/stray.txt").error, EACCES);
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/allowed.txt").bytes, "allowed by glob\n");
  unmount();
  mount(",unknown=audit");
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/stray.txt").bytes, "nobody packaged me\n");
  EXPECT_NE(log_text().find("AUDIT path=/usr/share/dfs/stray.txt reason=no-entry"), std::string::npos);
  unmount();
  mount(",unknown=allow");
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/stray.txt").bytes, "nobody packaged me\n");
}

TEST_F(Mount, FilesOfARejectedPackageAreUnknown) {
  mount();
  ASSERT_TRUE(std::filesystem::exists(root / "usr/share/dfsforeign/file.txt"));
  EXPECT_EQ(read_file(mnt / "usr/share/dfsforeign/file.txt").error, EACCES);
  EXPECT_NE(log_text().find("REJECTED package=dfs-foreign-1.0-1.noarch verdict=untrusted-key"),
            std::string::npos);
}

TEST_F(Mount, AnOpenReaderGetsEioOnceTheFileChanges) {
  mount();
  int fd = open((mnt / "usr/share/dfs/big.bin").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  char buf[4096];
  ASSERT_EQ(pread(fd, buf, sizeof buf, 0), static_cast<ssize_t>(sizeof buf));
  {
    std::fstream f(root / "usr/share/dfs/big.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(2000000);
    f << "TAMPERED";
  }
  errno = 0;
  EXPECT_EQ(pread(fd, buf, sizeof buf, 1998848), -1);
  EXPECT_EQ(errno, EIO);
  close(fd);
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/big.bin").error, EACCES);
}

TEST_F(Mount, ATamperedBinaryCannotBeExecuted) {
  mount();
  EXPECT_EQ(run_shell((mnt / "usr/bin/dfs-hello").string() + " >/dev/null"), 0);
  std::ofstream(root / "usr/bin/dfs-hello") << "#!/bin/sh\necho evil here\n";
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_NE(run_shell((mnt / "usr/bin/dfs-hello").string() + " >/dev/null 2>&1"), 0);
}

TEST_F(Mount, ReadOnlyMountRefusesWrites) {
  mount(",ro");
  int fd = open((mnt / "usr/share/dfs/new.txt").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  EXPECT_EQ(fd, -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, 0);
}

TEST_F(Mount, WritesPassThroughAndAreVerifiedAgain) {
  mount();
  {
    std::ofstream out(mnt / "usr/share/dfs/data.txt", std::ios::app);
    out << "more\n";
  }
  EXPECT_EQ(slurp(root / "usr/share/dfs/data.txt"), "trusted data, version 1\nmore\n");
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, EACCES);
  std::ofstream(mnt / "usr/share/dfs/created.txt") << "created\n";
  EXPECT_EQ(slurp(root / "usr/share/dfs/created.txt"), "created\n");
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/created.txt").error, EACCES) << "unknown=deny";
  EXPECT_EQ(mkdir((mnt / std::string(300, 'n')).c_str(), 0755), -1);
  EXPECT_EQ(errno, ENAMETOOLONG);
}

TEST_F(Mount, MountsOverItsOwnSource) {
  mount("", root / "usr", root / "usr");
  auto r = read_file(root / "usr/share/dfs/data.txt");
  EXPECT_EQ(r.error, 0) << log_text();
  EXPECT_EQ(r.bytes, "trusted data, version 1\n");
  unmount();
  std::ofstream(root / "usr/share/dfs/data.txt") << "trusted data, version Z\n";
  mount("", root / "usr", root / "usr");
  EXPECT_EQ(read_file(root / "usr/share/dfs/data.txt").error, EACCES);
}

TEST_F(Mount, ConfigFilesFollowTheConfigPolicy) {
  std::ofstream(root / "etc/dfs/dfs.conf") << "setting = edited by the admin\n";
  mount();
  EXPECT_EQ(read_file(mnt / "etc/dfs/dfs.conf").bytes, "setting = edited by the admin\n");
  EXPECT_NE(log_text().find("AUDIT path=/etc/dfs/dfs.conf reason=size-mismatch"), std::string::npos)
      << log_text();
  unmount();
  mount(",config=verify");
  EXPECT_EQ(read_file(mnt / "etc/dfs/dfs.conf").error, EACCES);
  unmount();
  std::filesystem::remove(log);
  mount(",config=skip");
  EXPECT_EQ(read_file(mnt / "etc/dfs/dfs.conf").error, 0);
  EXPECT_EQ(log_text().find("dfs.conf"), std::string::npos) << log_text();
}

TEST_F(Mount, GhostFilesAreNotContentChecked) {
  std::filesystem::create_directories(root / "var/log");
  std::ofstream(root / "var/log/dfs.log") << "whatever the service logged\n";
  mount();
  EXPECT_EQ(read_file(mnt / "var/log/dfs.log").bytes, "whatever the service logged\n");
}

TEST_F(Mount, RepeatedRefusalsAreRateLimitedAndCounted) {
  std::ofstream(root / "usr/share/dfs/data.txt") << "tampered\n";
  mount();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, EACCES);
  const std::string log = log_text();
  size_t lines = 0;
  for (size_t at = 0; (at = log.find("DENY path=/usr/share/dfs/data.txt", at)) != std::string::npos; ++at) ++lines;
  EXPECT_EQ(lines, 1u) << log;
  char buf[4096];
  ssize_t n = getxattr(mnt.c_str(), "user.digestfs.status", buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string(buf, static_cast<size_t>(n)).find("\"suppressed_events\":9"), std::string::npos)
      << std::string(buf, static_cast<size_t>(n));
}

TEST_F(Mount, FilesMadeThroughTheMountBelongToTheCaller) {
  std::filesystem::create_directories(root / "srv/shared");
  std::filesystem::permissions(work.path(), std::filesystem::perms::owner_all |
                                                std::filesystem::perms::group_exec |
                                                std::filesystem::perms::others_exec);
  std::filesystem::permissions(root / "srv/shared", std::filesystem::perms::all |
                                                        std::filesystem::perms::sticky_bit);
  mount(",unknown=allow");
  ASSERT_EQ(run_shell("setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'echo x >" +
                      (mnt / "srv/shared/made").string() + " && mkdir " +
                      (mnt / "srv/shared/dir").string() + "'"),
            0);
  for (const char* p : {"srv/shared/made", "srv/shared/dir"}) {
    struct stat st;
    ASSERT_EQ(stat((root / p).c_str(), &st), 0) << p;
    EXPECT_EQ(st.st_uid, 65534u) << p;
    EXPECT_EQ(st.st_gid, 65534u) << p;
  }
}

std::string status_of(const std::filesystem::path& mnt) {
  char buf[65536];
  ssize_t n = getxattr(mnt.c_str(), "user.digestfs.status", buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

TEST_F(Mount, ConcurrentFirstOpensHashOnce) {
  install({fx / "rpms/dfs-large-1.0-1.noarch.rpm"});
  mount();
  constexpr int kReaders = 64;
  std::vector<std::thread> readers;
  std::atomic<int> ready{0}, served{0};
  for (int i = 0; i < kReaders; ++i) {
    readers.emplace_back([&] {
      ++ready;
      while (ready.load() < kReaders) std::this_thread::yield();
      int fd = open((mnt / "usr/share/dfslarge/large.bin").c_str(), O_RDONLY | O_CLOEXEC);
      char c;
      if (fd >= 0 && pread(fd, &c, 1, 268435455) == 1 && c == 0) ++served;
      if (fd >= 0) close(fd);
    });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(served.load(), kReaders);
  const std::string status = status_of(mnt);
  EXPECT_NE(status.find("\"memo_misses\":1,"), std::string::npos) << status;
  EXPECT_NE(status.find("\"memo_hits\":63,"), std::string::npos) << status;
  EXPECT_NE(status.find("\"bytes_hashed\":268435456,"), std::string::npos) << status;
}

TEST_F(Mount, StatusReportsRejectionsAndDenials) {
  mount();
  EXPECT_EQ(read_file(mnt / "usr/share/dfsforeign/file.txt").error, EACCES);
  const std::string status = status_of(mnt);
  EXPECT_NE(status.find("\"verdict\":\"untrusted-key\""), std::string::npos) << status;
  EXPECT_NE(status.find("\"denials_by_reason\":{\"no-entry\":1}"), std::string::npos) << status;
  std::string out = work.path() / "status.json";
  EXPECT_EQ(run_shell(std::string(DIGESTFS_CACHE_BINARY) + " status " + mnt.string() + " >" + out), 0);
  EXPECT_NE(slurp(out).find("\"packages_accepted\":2"), std::string::npos) << slurp(out);
}

// What `mount -t fuse.digestfs` and fstab run. mount(8) resets PATH for its helper, so the
// test calls the helper directly with the build directory on PATH.
TEST_F(Mount, MountsThroughMountFuse3) {
  const std::string bin_dir = std::filesystem::path(DIGESTFS_BINARY).parent_path();
  std::string cmd = "PATH=" + bin_dir + ":$PATH mount.fuse3 " + root.string() + " " +
                    mnt.string() + " -t digestfs -o keys=" + keys.string() + ",root=" +
                    root.string() + ",nosuid,rw";
  ASSERT_EQ(run_shell(cmd), 0) << cmd;
  EXPECT_TRUE(mounted(mnt));
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").bytes, "trusted data, version 1\n");
  EXPECT_EQ(read_file(mnt / "usr/share/dfsforeign/file.txt").error, EACCES);
  EXPECT_EQ(run_shell("umount " + mnt.string()), 0);
}

}  // namespace
}  // namespace digestfs::test
