// Mounts the real digestfs binary over trees installed with `rpm --root R -i` from the real
// packages in ../shared/data/rpm and from packages signed at test time, and checks errno and
// bytes of what a reader gets. Teardown checks for leftover mounts and fd leaks.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "src/base/unique_fd.hpp"
#include "tests/support/held_thread.hpp"
#include "tests/support/installed_header.hpp"
#include "tests/support/mount_fixture.hpp"

namespace digestfs::test {
namespace {

using Mount = MountFixture;

TEST_F(Mount, UnchangedFilesReadExactly) {
  mount();
  for (const char* p : {"usr/share/dfs/data.txt", "usr/bin/hello", "usr/share/dfs/big.bin",
                        "usr/share/doc/hello-2.0/README"}) {
    auto r = read_file(mnt / p);
    EXPECT_EQ(r.error, 0) << p << "\n" << log_text();
    EXPECT_EQ(r.bytes, slurp(root / p)) << p;
  }
}

TEST_F(Mount, ContentClaimedOutsideTheSignedRegionIsRefused) {
  const std::string evil = "#!/bin/sh\necho evil\n";
  ASSERT_TRUE(write_text(root / "usr/bin/hello", evil));
  ASSERT_TRUE(with_installed_header(root, "hello", [&](Header h) {
    claim_content_for_hello(h, sha256_hex(evil), static_cast<uint32_t>(evil.size()));
    return true;
  }));
  mount();
  auto r = read_file(mnt / "usr/bin/hello");
  EXPECT_EQ(r.error, EACCES);
  EXPECT_TRUE(r.bytes.empty());
  EXPECT_NE(log_text().find("DENY path=/usr/bin/hello reason="), std::string::npos) << log_text();
}

TEST_F(Mount, ContentChangedWithTheSameSizeIsRefused) {
  ASSERT_TRUE(write_text(root / "usr/share/dfs/data.txt", "trusted data, version X\n"));
  mount();
  auto r = read_file(mnt / "usr/share/dfs/data.txt");
  EXPECT_EQ(r.error, EACCES);
  EXPECT_TRUE(r.bytes.empty());
  const std::string log = log_text();
  EXPECT_NE(log.find("DENY path=/usr/share/dfs/data.txt reason=digest-mismatch"), std::string::npos)
      << log;
  EXPECT_NE(log.find("expected=sha256:"), std::string::npos);
  EXPECT_NE(log.find("actual=sha256:"), std::string::npos);
  EXPECT_NE(log.find("package=dfs-base-1.0-1.noarch"), std::string::npos);
}

TEST_F(Mount, ChangedThenTimeSetBackIsRefused) {
  mount();
  ASSERT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, 0);
  const auto f = root / "usr/share/dfs/data.txt";
  ASSERT_EQ(run_shell("cp -p " + f.string() + " " + (work.path() / "ref").string()), 0);
  ASSERT_TRUE(write_text(f, "trusted data, version Y\n"));
  ASSERT_EQ(run_shell("touch -r " + (work.path() / "ref").string() + " " + f.string()), 0);
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, EACCES);
}

TEST_F(Mount, TruncatedAndAppendedFilesAreRefused) {
  ASSERT_EQ(truncate((root / "usr/share/dfs/data.txt").c_str(), 5), 0);
  ASSERT_TRUE(append_text(root / "usr/share/doc/hello-2.0/README", "appended\n"));
  mount();
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, EACCES);
  EXPECT_EQ(read_file(mnt / "usr/share/doc/hello-2.0/README").error, EACCES);
}

TEST_F(Mount, AFileReplacedByRenameIsRefused) {
  mount();
  ASSERT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, 0);
  ASSERT_TRUE(write_text(root / "usr/share/dfs/new", "replacement, same length!\n"));
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

// A file removed while the kernel still knows it (here held open by an O_PATH fd), and a new
// one made at once that the lower filesystem gives the same inode number: the new one is
// served as itself, never as what the kernel kept of the old one, nor as a stale handle.
TEST_F(Mount, ANewFileGivenAGoneFilesInodeNumberIsServedAsItself) {
  mount(",unknown-allow=/usr/share/dfs/*");
  const auto link = mnt / "usr/share/dfs/reused-link";
  const auto file = mnt / "usr/share/dfs/reused-file";
  char buf[64];
  auto ino = [&](const std::filesystem::path& p) {
    struct stat st {};
    lstat((root / std::filesystem::relative(p, mnt)).c_str(), &st);
    return st.st_ino;
  };
  bool reused = false;
  for (int attempt = 0; attempt < 20; ++attempt) {
    ASSERT_EQ(symlink("old-target", link.c_str()), 0);
    ASSERT_EQ(readlink(link.c_str(), buf, sizeof buf), 10);  // the kernel keeps the target
    ASSERT_TRUE(write_text(file, "old\n"));
    ASSERT_EQ(read_file(file).bytes, "old\n");
    const ino_t old_link = ino(link), old_file = ino(file);
    const UniqueFd held_link(open(link.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    const UniqueFd held_file(open(file.c_str(), O_PATH | O_CLOEXEC));
    ASSERT_TRUE(held_link.valid() && held_file.valid());
    ASSERT_EQ(unlink(link.c_str()), 0);
    ASSERT_EQ(unlink(file.c_str()), 0);
    ASSERT_EQ(symlink("new-target", link.c_str()), 0);
    ASSERT_TRUE(write_text(file, "new\n"));
    reused |= ino(link) == old_link || ino(file) == old_file;
    const ssize_t n = readlink(link.c_str(), buf, sizeof buf);
    ASSERT_GT(n, 0) << std::strerror(errno);
    EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "new-target");
    const ReadResult r = read_file(file);
    EXPECT_EQ(r.error, 0);
    EXPECT_EQ(r.bytes, "new\n");
    ASSERT_EQ(unlink(link.c_str()), 0);
    ASSERT_EQ(unlink(file.c_str()), 0);
  }
  EXPECT_TRUE(reused) << "no inode number was given again: nothing was shown";
}

// A file known to the kernel gains a link beneath the mount, in a place where unknown files
// are allowed, and is changed through it: the packaged path is still judged as itself.
TEST_F(Mount, AFileThatGainsALinkBeneathTheMountIsStillJudgedByItsOwnPath) {
  mount(",unknown-allow=/usr/share/dfs/*");
  EXPECT_EQ(read_file(mnt / "usr/bin/hello").error, 0);
  std::filesystem::create_hard_link(root / "usr/bin/hello", root / "usr/share/dfs/alias");
  ASSERT_TRUE(write_text(root / "usr/share/dfs/alias", "tampered through a new link\n"));
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/alias").bytes, "tampered through a new link\n");
  const ReadResult r = read_file(mnt / "usr/bin/hello");
  EXPECT_EQ(r.error, EACCES);
  EXPECT_TRUE(r.bytes.empty());
  EXPECT_NE(log_text().find("DENY path=/usr/bin/hello"), std::string::npos) << log_text();
}

TEST_F(Mount, AChangeThroughOneHardLinkIsSeenThroughTheOther) {
  mount(",unknown=allow");
  std::filesystem::create_directories(mnt / "srv");
  ASSERT_TRUE(write_text(mnt / "srv/one", "x"));
  ASSERT_EQ(link((mnt / "srv/one").c_str(), (mnt / "srv/two").c_str()), 0);
  struct stat st;
  ASSERT_EQ(stat((mnt / "srv/one").c_str(), &st), 0);  // cached, were it cacheable
  ASSERT_EQ(chmod((mnt / "srv/two").c_str(), 0600), 0);
  ASSERT_EQ(stat((mnt / "srv/one").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_nlink, 2u);
}

TEST_F(Mount, ARepointedPackagedSymlinkIsRefused) {
  mount();
  char buf[256];
  ssize_t n = readlink((mnt / "usr/share/dfs/hello-link").c_str(), buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "../../bin/dfs-hello");
  std::filesystem::remove(root / "usr/share/dfs/hello-link");
  std::filesystem::create_symlink("/etc/shadow", root / "usr/share/dfs/hello-link");
  // Refused once the kernel looks the name up again (its entry cache expires after a second).
  EXPECT_TRUE(within(std::chrono::milliseconds(10000), [&] {
    errno = 0;
    return readlink((mnt / "usr/share/dfs/hello-link").c_str(), buf, sizeof buf) == -1 &&
           errno == EACCES;
  }));
}

// The kernel reads ahead the smaller of the mount's device setting and what the daemon's
// reply to INIT offered: both must say what was asked, or a sequential reader waits for the
// round trip of every 128 KiB.
TEST_F(Mount, TheKernelReadsAheadAsFarAsTheMountAsks) {
  for (const std::string kib : {"4096", "1024"}) {
    mount(kib == "4096" ? "" : ",read-ahead=" + kib);
    struct stat st;
    ASSERT_EQ(stat(mnt.c_str(), &st), 0);
    const std::filesystem::path device = "/sys/class/bdi/" + std::to_string(major(st.st_dev)) +
                                         ":" + std::to_string(minor(st.st_dev));
    EXPECT_EQ(slurp(device / "read_ahead_kb"), kib + "\n");
    unmount();
  }
}

TEST_F(Mount, UnknownFilesFollowTheUnknownPolicy) {
  ASSERT_TRUE(write_text(root / "usr/share/dfs/stray.txt", "nobody packaged me\n"));
  ASSERT_TRUE(write_text(root / "usr/share/dfs/allowed.txt", "allowed by glob\n"));
  mount(",unknown-allow=/usr/share/dfs/allowed.*");
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/stray.txt").error, EACCES);
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/allowed.txt").bytes, "allowed by glob\n");
  unmount();
  mount(",unknown=audit");
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/stray.txt").bytes, "nobody packaged me\n");
  EXPECT_NE(log_text().find("AUDIT path=/usr/share/dfs/stray.txt reason=no-entry"),
            std::string::npos);
  unmount();
  mount(",unknown=allow");
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/stray.txt").bytes, "nobody packaged me\n");
}

TEST_F(Mount, WeakDigestsAreTrustedOnlyWhenAllowedAndThenLoudly) {
  install({fx / "rpms/dfs-md5-1.0-1.noarch.rpm"});
  mount();
  EXPECT_EQ(read_file(mnt / "usr/share/dfsmd5/file.txt").error, EACCES);
  EXPECT_NE(log_text().find("REJECTED package=dfs-md5-1.0-1.noarch verdict=weak-digest"),
            std::string::npos);
  unmount();
  mount(",allow-weak-digests");
  EXPECT_EQ(read_file(mnt / "usr/share/dfsmd5/file.txt").bytes, "md5 content\n");
  EXPECT_NE(log_text().find("WEAK-DIGESTS package=dfs-md5-1.0-1.noarch algo=md5"),
            std::string::npos)
      << log_text();
}

TEST_F(Mount, FilesOfARejectedPackageAreUnknown) {
  mount();
  ASSERT_TRUE(std::filesystem::exists(root / "usr/share/dfsforeign/file.txt"));
  EXPECT_EQ(read_file(mnt / "usr/share/dfsforeign/file.txt").error, EACCES);
  EXPECT_NE(log_text().find("REJECTED package=dfs-foreign-1.0-1.noarch verdict=untrusted-key"),
            std::string::npos);
}

// Opens big.bin through the mount at `mnt`, reads it, tampers with it beneath (in `root`) and
// reads where it changed: what that read ended with.
void tamper_under_an_open_reader(const std::filesystem::path& mnt,
                                 const std::filesystem::path& root) {
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
}

TEST_F(Mount, AnOpenReaderGetsEioOnceTheFileChanges) {
  mount();
  tamper_under_an_open_reader(mnt, root);
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/big.bin").error, EACCES);
}

// Without block checks the version is compared after each read; a refusal is logged all the
// same.
TEST_F(Mount, WithoutBlockChecksAnOpenReaderGetsEioOnceTheFileChangesAndItIsLogged) {
  mount(",block-checks=no");
  tamper_under_an_open_reader(mnt, root);
  EXPECT_NE(log_text().find("DENY path=/usr/share/dfs/big.bin reason=changed-under-handle"),
            std::string::npos)
      << log_text();
  EXPECT_NE(status().find("\"changed-under-handle\":"), std::string::npos) << status();
}

// (The page-cache race between such a writer and a reader is the stress test's to find.)
TEST_F(Mount, AnOpenReaderGetsEioOnceTheFileIsWrittenThroughTheMount) {
  mount();
  const auto path = mnt / "usr/share/dfs/data.txt";
  int reader = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  char buf[64] = {};
  ASSERT_GT(pread(reader, buf, sizeof buf, 0), 0);
  int writer = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(writer, 0);
  ASSERT_EQ(pwrite(writer, "TAMPERED", 8, 0), 8);
  errno = 0;
  ssize_t n = pread(reader, buf, sizeof buf, 0);
  EXPECT_EQ(n, -1) << "served unverified bytes: " << std::string(buf, n > 0 ? size_t(n) : 0);
  EXPECT_EQ(errno, EIO);
  close(writer);
  close(reader);
}

// A writer that came first has the page cache, and what it writes there would reach a private
// mapping of the reader (as ld.so maps libraries) without a read the block checks see.
TEST_F(Mount, AVerifiedOpenBesideAWriterThatCameFirstIsRefused) {
  mount();
  const auto path = mnt / "usr/share/dfs/data.txt";
  int writer = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(writer, 0);
  EXPECT_EQ(read_file(path).error, EACCES);
  EXPECT_NE(log_text().find("DENY path=/usr/share/dfs/data.txt reason=open-for-writing"),
            std::string::npos)
      << log_text();
  close(writer);
  EXPECT_EQ(read_file(path).bytes, "trusted data, version 1\n");
}

// Renaming a symlink drops its cached target, which waits for the page lock that a READLINK
// of it holds until answered: a drop on the request loop would leave that READLINK, and then
// the whole mount, unanswered.
TEST_F(Mount, RenamingASymlinkWhileItIsReadKeepsTheMountAnswering) {
  mount();
  const auto a = mnt / "usr/share/dfs/hello-link", b = mnt / "usr/share/dfs/hello-link2";
  const UniqueFd held(open(a.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  ASSERT_TRUE(held.valid());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0};
  std::thread reader([&] {
    char buf[256];
    while (!stop) reads += readlinkat(held.get(), "", buf, sizeof buf) > 0;
  });
  std::atomic<int> renamed{0};
  std::thread renamer([&] {
    for (int i = 0; i < 500 && !stop; ++i) {
      if (std::rename((i % 2 ? b : a).c_str(), (i % 2 ? a : b).c_str()) == 0) ++renamed;
    }
  });
  const bool answered =
      within(std::chrono::milliseconds(120000), [&] { return renamed == 500; }).has_value();
  EXPECT_TRUE(answered) << "the mount stopped answering after " << renamed << " renames";
  stop = true;
  if (!answered) kill(pid, SIGKILL);  // lets the stuck threads return
  reader.join();
  renamer.join();
  EXPECT_GT(reads.load(), 0u) << "no READLINK ran beside the renames: the test proves nothing";
}

// rpm -V's M column: a set-user-ID bit added beneath would run signed content with privileges
// its package never gave it.
TEST_F(Mount, ASetIdBitAddedBeneathIsRefusedWhateverTheContent) {
  const auto lower = root / "usr/bin/dfs-hello";
  ASSERT_EQ(chmod(lower.c_str(), 04755), 0);
  mount();
  EXPECT_EQ(read_file(mnt / "usr/bin/dfs-hello").error, EACCES);
  EXPECT_NE(log_text().find("DENY path=/usr/bin/dfs-hello reason=mode-mismatch mode=4755 "
                            "expected_mode=0755"),
            std::string::npos)
      << log_text();
  ASSERT_EQ(chmod(lower.c_str(), 02755), 0);
  EXPECT_EQ(read_file(mnt / "usr/bin/dfs-hello").error, EACCES) << "set-group-ID alike";
  ASSERT_EQ(chmod(lower.c_str(), 0700), 0);
  EXPECT_EQ(read_file(mnt / "usr/bin/dfs-hello").bytes, slurp(lower)) << "fewer rights are no risk";
}

TEST_F(Mount, ATamperedBinaryCannotBeExecuted) {
  mount();
  EXPECT_EQ(run_shell((mnt / "usr/bin/dfs-hello").string() + " >/dev/null"), 0);
  ASSERT_TRUE(write_text(root / "usr/bin/dfs-hello", "#!/bin/sh\necho evil here\n"));
  EXPECT_TRUE(within(std::chrono::milliseconds(10000), [&] {
    return run_shell((mnt / "usr/bin/dfs-hello").string() + " >/dev/null 2>&1") != 0;
  }));
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
  ASSERT_TRUE(append_text(mnt / "usr/share/dfs/data.txt", "more\n"));
  EXPECT_EQ(slurp(root / "usr/share/dfs/data.txt"), "trusted data, version 1\nmore\n");
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, EACCES);
  ASSERT_TRUE(write_text(mnt / "usr/share/dfs/created.txt", "created\n"));
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
  ASSERT_TRUE(write_text(root / "usr/share/dfs/data.txt", "trusted data, version Z\n"));
  mount("", root / "usr", root / "usr");
  EXPECT_EQ(read_file(root / "usr/share/dfs/data.txt").error, EACCES);
}

TEST_F(Mount, ConfigFilesFollowTheConfigPolicy) {
  ASSERT_TRUE(write_text(root / "etc/dfs/dfs.conf", "setting = edited by the admin\n"));
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
  ASSERT_TRUE(write_text(root / "var/log/dfs.log", "whatever the service logged\n"));
  mount();
  EXPECT_EQ(read_file(mnt / "var/log/dfs.log").bytes, "whatever the service logged\n");
}

TEST_F(Mount, RepeatedRefusalsAreRateLimitedAndCounted) {
  ASSERT_TRUE(write_text(root / "usr/share/dfs/data.txt", "tampered\n"));
  mount();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, EACCES);
  const std::string log = log_text();
  size_t lines = 0;
  for (size_t at = 0; (at = log.find("DENY path=/usr/share/dfs/data.txt", at)) != std::string::npos;
       ++at)
    ++lines;
  EXPECT_EQ(lines, 1u) << log;
  EXPECT_NE(status().find("\"suppressed_events\":9"), std::string::npos) << status();
}

TEST_F(Mount, FilesMadeThroughTheMountBelongToTheCaller) {
  std::filesystem::create_directories(root / "srv/shared");
  std::filesystem::permissions(work.path(), std::filesystem::perms::owner_all |
                                                std::filesystem::perms::group_exec |
                                                std::filesystem::perms::others_exec);
  std::filesystem::permissions(root / "srv/shared",
                               std::filesystem::perms::all | std::filesystem::perms::sticky_bit);
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
  const std::string doc = status();
  EXPECT_NE(doc.find("\"memo_misses\":1,"), std::string::npos) << doc;
  EXPECT_NE(doc.find("\"memo_hits\":63,"), std::string::npos) << doc;
  EXPECT_NE(doc.find("\"bytes_hashed\":268435456,"), std::string::npos) << doc;
}

TEST_F(Mount, AChangeWhileTheFileIsHashedNeverPasses) {
  install({fx / "rpms/dfs-large-1.0-1.noarch.rpm"});
  mount();
  // Writes land on the lower file all through the first open's hashing (about 0.2 s for
  // 256 MiB); every one of them restores the packaged byte, so only the timing is wrong. The
  // open starts once the writer has written, and the writer stops only when the open is over.
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> writes{0};
  std::thread writer([&] {
    int fd = open((root / "usr/share/dfslarge/large.bin").c_str(), O_WRONLY | O_CLOEXEC);
    char zero = 0;
    while (!stop) {
      EXPECT_EQ(pwrite(fd, &zero, 1, 100 << 20), 1);
      ++writes;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    close(fd);
  });
  ASSERT_TRUE(within(std::chrono::milliseconds(10000), [&] { return writes > 0; }));
  auto r = read_file(mnt / "usr/share/dfslarge/large.bin");
  stop = true;
  writer.join();
  EXPECT_EQ(r.error, EACCES);
  EXPECT_TRUE(r.bytes.empty());
  EXPECT_NE(log_text().find("DENY path=/usr/share/dfslarge/large.bin reason=changed-while-hashing"),
            std::string::npos)
      << log_text();
  // Once the writes stop, the (unchanged) content verifies again.
  EXPECT_EQ(read_file(mnt / "usr/share/dfslarge/large.bin").error, 0);
}

// A small file whose bytes are in the page cache is verified on the request loop: with every
// waiting thread held, its first open is still answered, hashed there (a memo miss).
TEST_F(Mount, ASmallFileInThePageCacheIsVerifiedWithoutAWaitingThread) {
  mount();
  const auto data = std::filesystem::path("usr/share/dfs/data.txt");
  ASSERT_EQ(slurp(root / data), "trusted data, version 1\n");  // in the page cache
  const uint64_t misses = status_number("memo_misses");
  std::future<ReadResult> read;
  bool answered = false;
  {
    HeldThreads waiting(pid, "dfs-waiting");
    ASSERT_GT(waiting.count(), 0u) << "no thread dfs-waiting to hold in " << pid;
    read = std::async(std::launch::async, [&] { return read_file(mnt / data); });
    answered = read.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  }
  EXPECT_TRUE(answered) << "the open waited for a waiting thread";
  EXPECT_EQ(read.get().bytes, "trusted data, version 1\n") << log_text();
  EXPECT_EQ(status_number("memo_misses"), misses + 1) << status();
}

// A packaged symlink's target is allowed on the request loop: with every waiting thread held,
// its readlink is still answered. A target the index does not allow is left to a waiting
// thread, which refuses it and says why once it runs.
TEST_F(Mount, APackagedSymlinkIsReadWithoutAWaitingThread) {
  std::filesystem::create_symlink("../../bin/dfs-hello", root / "usr/share/dfs/stray-link");
  mount();
  auto read_link = [](const std::filesystem::path& p) {
    char buf[256];
    errno = 0;
    const ssize_t n = readlink(p.c_str(), buf, sizeof buf);
    return n < 0 ? ReadResult{errno, {}} : ReadResult{0, std::string(buf, size_t(n))};
  };
  std::future<ReadResult> packaged, stray;
  bool answered = false;
  {
    HeldThreads waiting(pid, "dfs-waiting");
    ASSERT_GT(waiting.count(), 0u) << "no thread dfs-waiting to hold in " << pid;
    packaged = std::async(std::launch::async, read_link, mnt / "usr/share/dfs/hello-link");
    answered = packaged.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
    stray = std::async(std::launch::async, read_link, mnt / "usr/share/dfs/stray-link");
  }
  EXPECT_TRUE(answered) << "the readlink waited for a waiting thread";
  const ReadResult target = packaged.get();
  EXPECT_EQ(target.error, 0);
  EXPECT_EQ(target.bytes, "../../bin/dfs-hello");
  EXPECT_EQ(stray.get().error, EACCES);
  EXPECT_NE(log_text().find("DENY path=/usr/share/dfs/stray-link reason=no-entry"),
            std::string::npos)
      << log_text();
}

TEST_F(Mount, StatusReportsRejectionsAndDenials) {
  mount();
  EXPECT_EQ(read_file(mnt / "usr/share/dfsforeign/file.txt").error, EACCES);
  const std::string doc = status();
  EXPECT_NE(doc.find("\"verdict\":\"untrusted-key\""), std::string::npos) << doc;
  EXPECT_NE(doc.find("\"denials_by_reason\":{\"no-entry\":1}"), std::string::npos) << doc;
  std::string out = work.path() / "status.json";
  EXPECT_EQ(
      run_shell(std::string(DIGESTFS_CACHE_BINARY) + " --json status " + mnt.string() + " >" + out),
      0);
  EXPECT_NE(slurp(out).find("\"packages_accepted\":2"), std::string::npos) << slurp(out);
}

// Status attributes anybody can set on a directory (beneath the mount too, where they are the
// lower's) are no mount's answer: status, state and reload say it is no digestfs mount.
TEST_F(Mount, StatusOfADirectoryThatOnlyLooksLikeAMountIsRefused) {
  mount();
  const auto plain = work.path() / "plain", beneath = mnt / "usr/share/dfs";
  std::filesystem::create_directories(plain);
  const std::string forged = "mode: enforce\n";
  for (const auto& dir : {plain, beneath}) {
    for (const char* name : {"user.digestfs.status", "user.digestfs.status.text"}) {
      ASSERT_EQ(setxattr(dir.c_str(), name, forged.data(), forged.size(), 0), 0)
          << dir << ": " << std::strerror(errno);
    }
    for (const char* cmd : {" status ", " --json status ", " state ", " reload "}) {
      const CommandOutput r = run_captured(std::string(DIGESTFS_CACHE_BINARY) + cmd + dir.string());
      EXPECT_EQ(r.status, 3) << cmd << dir << ": " << r.out;
      EXPECT_EQ(r.out, "") << cmd << dir;
      EXPECT_NE(r.err.find(dir.string() + ": not a digestfs mount"), std::string::npos) << r.err;
    }
  }
  EXPECT_EQ(
      run_shell(std::string(DIGESTFS_CACHE_BINARY) + " status " + mnt.string() + "/ >/dev/null"), 0)
      << "the mount's own root, as written with a slash";
}

// Root without CAP_SYS_ADMIN (a unit's or a container's capability bounding set) cannot
// mount, beside its source or over it: the daemon says where, why and what is missing, exits
// 1, and leaves nothing mounted.
TEST_F(Mount, WithoutTheCapabilityToMountItSaysSoAndExits) {
  const struct {
    std::filesystem::path source;
    std::string refused;
  } cases[] = {{root, "fsopen fuse"}, {mnt, "binding " + mnt.string()}};
  for (const auto& c : cases) {
    const CommandOutput run =
        run_captured("setpriv --bounding-set -sys_admin " + std::string(DIGESTFS_BINARY) +
                     " -f -o keys=" + keys.string() + ",root=" + root.string() + " " +
                     c.source.string() + " " + mnt.string());
    EXPECT_EQ(run.status, 1) << run.err;
    EXPECT_NE(run.err.find("cannot mount on " + mnt.string() + ": " + c.refused +
                           ": Operation not permitted (mounting takes CAP_SYS_ADMIN)"),
              std::string::npos)
        << run.err;
    EXPECT_FALSE(mounted(mnt));
  }
}

// What `mount -t fuse.digestfs` and fstab run. mount(8) resets PATH for its helper, so the
// test calls the helper directly with the build directory on PATH.
TEST_F(Mount, MountsThroughMountFuse3) {
  const std::string bin_dir = std::filesystem::path(DIGESTFS_BINARY).parent_path();
  std::string cmd = "PATH=" + bin_dir + ":$PATH mount.fuse3 " + root.string() + " " + mnt.string() +
                    " -t digestfs -o keys=" + keys.string() + ",root=" + root.string() +
                    ",nosuid,rw";
  ASSERT_EQ(run_shell(cmd), 0) << cmd;
  EXPECT_TRUE(mounted(mnt));
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").bytes, "trusted data, version 1\n");
  EXPECT_EQ(read_file(mnt / "usr/share/dfsforeign/file.txt").error, EACCES);
  EXPECT_EQ(run_shell("umount " + mnt.string()), 0);
}

}  // namespace
}  // namespace digestfs::test
