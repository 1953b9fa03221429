// Block checks against lower filesystems that change bytes without touching any metadata: a
// FUSE server that lies (tests/lying_fs) and an ext4 image whose blocks are rewritten through
// its loop device. The first open passes; later reads of the changed blocks fail with EIO, in
// plain reads, after the page cache is dropped and through mmap, and no reader is ever given
// a byte that is not the packaged one. And a lower whose reads hang: that holds up only the
// open that waits for it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <future>
#include <sstream>
#include <thread>

#include "src/base/content_stamp.hpp"
#include "src/base/unique_fd.hpp"
#include "tests/support/lying_fs_fixture.hpp"

namespace digestfs::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kBig = "usr/share/dfs/big.bin";  // 3,000,000 bytes
constexpr off_t kLieFrom = 1 << 20;                    // the lies start at block 256
constexpr off_t kLiedAt = 2 << 20;                     // block 512

// Reads `size` bytes at `offset` of fd: the bytes, or the errno.
ReadResult read_at(int fd, off_t offset, size_t size) {
  ReadResult r;
  r.bytes.resize(size);
  ssize_t n = pread(fd, r.bytes.data(), size, offset);
  if (n < 0) {
    r.error = errno;
    r.bytes.clear();
  } else {
    r.bytes.resize(static_cast<size_t>(n));
  }
  return r;
}

// Whether a child that maps the file through `fd` and reads `size` bytes at `offset` got
// exactly `expected` (exit 0), other bytes (exit 1), or was killed by SIGBUS.
std::string mapped_read(int fd, off_t offset, size_t size, const std::string& expected) {
  pid_t child = fork();
  if (child == 0) {
    const size_t length = static_cast<size_t>(offset) + size;
    void* map = mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) _exit(2);
    const bool same = std::memcmp(static_cast<char*>(map) + offset, expected.data(), size) == 0;
    _exit(same ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  if (WIFSIGNALED(status)) return WTERMSIG(status) == SIGBUS ? "SIGBUS" : "signal";
  return WEXITSTATUS(status) == 0 ? "packaged bytes" : "foreign bytes or no mapping";
}

class BlockChecks : public LyingFsFixture {
 protected:
  void start_lying_fs() { LyingFsFixture::start_lying_fs(kBig, kLieFrom); }
  // From now on the lying server lies.
  void start_lying() { ask_lying_fs("user.lying-fs.start"); }
  void drop_page_caches() {
    sync();
    ASSERT_TRUE(write_text("/proc/sys/vm/drop_caches", "3\n"));
  }
};

TEST_F(BlockChecks, ALowerFilesystemThatLiesIsCaughtAtEveryReadPath) {
  const std::string pristine = slurp(root / kBig);
  ASSERT_EQ(pristine.size(), 3000000u);
  start_lying_fs();
  mount(",prefix=/", lie, mnt);
  const auto path = mnt / kBig;
  ASSERT_EQ(read_file(path).bytes, pristine) << log_text();
  // Three readers, opened while the lower told the truth.
  const int plain = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  const int after_drop = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  const int mapped = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(plain, 0);
  ASSERT_GE(after_drop, 0);
  ASSERT_GE(mapped, 0);
  start_lying();

  // What the kernel still caches was verified: served. Once it is dropped, the daemon reads
  // the lies and refuses them.
  EXPECT_EQ(read_at(plain, kLiedAt, 4096).bytes, pristine.substr(kLiedAt, 4096));
  ASSERT_EQ(posix_fadvise(plain, 0, 0, POSIX_FADV_DONTNEED), 0);
  EXPECT_EQ(read_at(plain, kLiedAt, 4096).error, EIO);
  EXPECT_EQ(read_at(plain, 0, 4096).bytes, pristine.substr(0, 4096)) << "blocks told true pass";
  EXPECT_EQ(read_at(plain, kLiedAt + 100, 10).error, EIO) << "a read inside a lied-about block";
  drop_page_caches();
  EXPECT_EQ(read_at(after_drop, kLiedAt, 65536).error, EIO);
  EXPECT_EQ(mapped_read(mapped, kLiedAt, 4096, pristine.substr(kLiedAt, 4096)), "SIGBUS");
  close(plain);
  close(after_drop);
  close(mapped);

  const std::string log = log_text();
  EXPECT_NE(log.find("DENY path=/" + std::string(kBig) +
                     " reason=block-mismatch block=512 "
                     "expected=sha256:"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find(" actual=sha256:"), std::string::npos);
  EXPECT_GE(status_number("block_mismatches"), 1u) << status();
  // The version is forgotten: the next open hashes the file again, and the lie fails it whole.
  EXPECT_EQ(read_file(path).error, EACCES);
  EXPECT_NE(log_text().find("DENY path=/" + std::string(kBig) + " reason=digest-mismatch"),
            std::string::npos);
}

// What the block checks are for: without them, the lie reaches the reader.
TEST_F(BlockChecks, WithoutThemTheLieIsServed) {
  const std::string pristine = slurp(root / kBig);
  start_lying_fs();
  mount(",prefix=/,block-checks=no", lie, mnt);
  const int fd = open((mnt / kBig).c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << log_text();
  start_lying();
  ASSERT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  const ReadResult r = read_at(fd, kLiedAt, 4096);
  close(fd);
  EXPECT_EQ(r.error, 0);
  EXPECT_NE(r.bytes, pristine.substr(kLiedAt, 4096)) << "the lying server did not lie";
  EXPECT_NE(status().find("\"block_checks\":\"off\""), std::string::npos) << status();
}

// A lower file whose reads hang (a dead disk, a hung server) holds up its own open and nothing
// else: the open waits off the request loop, while the status, lookups and another file's open
// and reads are answered. Once the lower answers again, the open gets its verdict.
class HungLower : public BlockChecks {};

TEST_F(HungLower, HoldsUpOnlyTheOpenThatWaitsForIt) {
  const std::string big = slurp(root / kBig);
  const std::string data = slurp(root / "usr/share/dfs/data.txt");
  start_lying_fs();
  mount(",prefix=/", lie, mnt);
  ask_lying_fs("user.lying-fs.stall");
  std::atomic<bool> answered{false};
  ReadResult held;
  std::thread opener([&] {
    held = read_file(mnt / kBig);
    answered = true;
  });
  struct Seen {
    bool hashing = false;  // the status said the open is hashing
    ReadResult data;
    int stat_rc = -1;
    bool open_waiting = false;  // and the open was still not answered after all of it
  };
  auto others = std::async(std::launch::async, [&] {
    Seen s;
    s.hashing = within(30000ms, [&] { return status_number("hashing") == 1; }).has_value();
    s.data = read_file(mnt / "usr/share/dfs/data.txt");
    struct stat st;
    s.stat_rc = stat((mnt / "usr/bin/hello").c_str(), &st);
    s.open_waiting = !answered;
    return s;
  });
  const bool in_time = others.wait_for(60s) == std::future_status::ready;
  ask_lying_fs("user.lying-fs.resume");
  opener.join();
  ASSERT_TRUE(in_time) << "the other requests waited for the held open";
  const Seen s = others.get();
  EXPECT_TRUE(s.hashing) << status();
  EXPECT_EQ(s.data.error, 0);
  EXPECT_EQ(s.data.bytes, data);
  EXPECT_EQ(s.stat_rc, 0) << std::strerror(errno);
  EXPECT_TRUE(s.open_waiting) << "the lower's reads were not held";
  EXPECT_EQ(held.error, 0) << log_text();
  EXPECT_EQ(held.bytes, big);
}

// A real block device: an ext4 image on a loop device, a file verified through the mount,
// then its blocks rewritten through the device. Neither size nor times change.
TEST_F(BlockChecks, ABlockRewrittenOnTheDeviceIsRefused) {
  DIGESTFS_REQUIRE(access("/dev/loop-control", W_OK) == 0 &&
                       run_shell("command -v losetup mkfs.ext4 filefrag >/dev/null") == 0,
                   "loop devices (/dev/loop-control, losetup, mkfs.ext4, filefrag)");
  const auto image = work.path() / "ext4.img";
  const auto disk = work.path() / "ext4";
  std::filesystem::create_directories(disk);
  ASSERT_EQ(
      run_shell("truncate -s 64M " + image.string() + " && mkfs.ext4 -q -b 4096 " + image.string()),
      0);
  const CommandOutput attached = run_captured("losetup -f --show " + image.string());
  ASSERT_EQ(attached.status, 0) << attached.err;
  const std::string device = attached.out.substr(0, attached.out.find('\n'));
  struct Detach {
    std::string device;
    std::filesystem::path disk;
    ~Detach() {
      umount2(disk.c_str(), MNT_DETACH);
      run_shell("losetup -d " + device);
    }
  } detach{device, disk};
  ASSERT_EQ(::mount(device.c_str(), disk.c_str(), "ext4", 0, nullptr), 0) << std::strerror(errno);
  root = disk / "root";
  ASSERT_TRUE(install_into_root(root, {fx / "rpms/dfs-base-1.0-1.noarch.rpm"}));
  const std::string pristine = slurp(root / kBig);
  mount();
  UniqueFd fd(open((mnt / kBig).c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd) << log_text();
  ASSERT_EQ(read_at(fd.get(), kLiedAt, 4096).bytes, pristine.substr(kLiedAt, 4096));
  ASSERT_EQ(status_number("warm_fds"), 1u) << "kept for reopening: " << status();

  // Where block 512 of the file lies on the device: filefrag's extents in 4 KiB blocks, once
  // the file has been written out (-s: before that, ext4 has not placed it yet).
  const CommandOutput frag = run_captured("filefrag -s -v -b4096 " + (root / kBig).string());
  ASSERT_EQ(frag.status, 0) << frag.err;
  std::optional<uint64_t> physical;
  std::istringstream lines(frag.out);
  for (std::string line; std::getline(lines, line);) {
    unsigned long long logical_start, logical_end, physical_start;
    if (std::sscanf(line.c_str(), " %*u: %llu.. %llu: %llu..", &logical_start, &logical_end,
                    &physical_start) == 3 &&
        logical_start <= 512 && 512 <= logical_end &&
        line.find("unknown_loc") == std::string::npos &&
        line.find("unwritten") == std::string::npos) {
      physical = physical_start + (512 - logical_start);
    }
  }
  ASSERT_TRUE(physical.has_value()) << frag.out;
  struct stat before;
  ASSERT_EQ(stat((root / kBig).c_str(), &before), 0);
  {
    UniqueFd dev(open(device.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(dev) << std::strerror(errno);
    const std::string rewritten(4096, 'Z');
    ASSERT_EQ(
        pwrite(dev.get(), rewritten.data(), rewritten.size(), static_cast<off_t>(*physical * 4096)),
        4096);
    ASSERT_EQ(fsync(dev.get()), 0);
  }
  drop_page_caches();
  struct stat after;
  ASSERT_EQ(stat((root / kBig).c_str(), &after), 0);
  ASSERT_EQ(stamp_of(after), stamp_of(before)) << "the inode does not know";
  ASSERT_EQ(slurp(root / kBig).substr(kLiedAt, 4), "ZZZZ") << "the device write reached the file";
  EXPECT_EQ(read_at(fd.get(), kLiedAt, 4096).error, EIO);
  fd.reset();
  EXPECT_NE(log_text().find("reason=block-mismatch block=512"), std::string::npos) << log_text();
  // The version is forgotten, and with it the fd kept for reopening: the next open hashes
  // the file again, and the change fails it whole.
  EXPECT_EQ(read_file(mnt / kBig).error, EACCES) << log_text();
  EXPECT_NE(log_text().find("reason=digest-mismatch"), std::string::npos) << log_text();
  unmount();
}

}  // namespace
}  // namespace digestfs::test
