// Leases on lower files: an open or truncate through the mount that breaks one waits for the
// lease's holder to let go (up to /proc/sys/fs/lease-break-time), and only that request may
// wait. Any owner of a file beneath the mount may take a lease on it; were the request loop the
// one waiting, nobody could use the mount meanwhile.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <string>

#include "src/base/unique_fd.hpp"
#include "tests/support/mount_fixture.hpp"

namespace digestfs::test {
namespace {

using namespace std::chrono_literals;

// Whether /proc/locks lists a lease on the inode: a lease being broken is listed until its
// holder lets go or the break time runs out.
bool lease_listed(ino_t ino) {
  std::ifstream locks("/proc/locks");
  const std::string inode = ":" + std::to_string(ino) + " ";
  for (std::string line; std::getline(locks, line);) {
    if (line.find("LEASE") != std::string::npos && line.find(inode) != std::string::npos) {
      return true;
    }
  }
  return false;
}

class Leases : public MountFixture {
 protected:
  void SetUp() override {
    MountFixture::SetUp();
    // A lease's holder is told of a break by SIGIO, whose default action ends the process.
    sigio_was = signal(SIGIO, SIG_IGN);
  }
  void TearDown() override {
    signal(SIGIO, sigio_was);
    MountFixture::TearDown();
  }

  // Takes a lease of `type` on the lower file, through an fd opened with `flags`.
  UniqueFd lease(const std::filesystem::path& lower, int flags, int type) {
    UniqueFd fd(open(lower.c_str(), flags | O_CLOEXEC));
    EXPECT_TRUE(fd.valid()) << lower << ": " << strerror(errno);
    EXPECT_EQ(fcntl(fd.get(), F_SETLEASE, type), 0) << strerror(errno);
    return fd;
  }

  // `pending` is a request through the mount that breaks the lease held by `leased`: once the
  // break has begun, another request is answered while the lease is still held and `pending`
  // still waits for it; then the lease is let go.
  template <class T>
  void expect_the_mount_answers_during_the_break(const UniqueFd& leased, std::future<T>& pending) {
    struct stat st;
    ASSERT_EQ(fstat(leased.get(), &st), 0);
    // While the break is under way the holder's lease reads as what it is to become (a write
    // lease broken by an open for reading becomes a read lease).
    const int held = fcntl(leased.get(), F_GETLEASE);
    ASSERT_TRUE(held == F_RDLCK || held == F_WRLCK) << held;
    ASSERT_TRUE(within(60s, [&] { return fcntl(leased.get(), F_GETLEASE) != held; }))
        << "the request never broke the lease" << log_text();
    auto other = std::async(std::launch::async, [&] {
      struct stat unrelated;
      return stat((mnt / "usr/share/no-such-name").c_str(), &unrelated) == 0 ? 0 : errno;
    });
    ASSERT_TRUE(within(120s, [&] { return other.wait_for(0s) == std::future_status::ready; }))
        << "no answer while the lease was being broken";
    EXPECT_EQ(other.get(), ENOENT);
    EXPECT_TRUE(lease_listed(st.st_ino))
        << "answered only once the break time ran out: the request loop waited for the lease";
    EXPECT_EQ(pending.wait_for(0s), std::future_status::timeout)
        << "the request that breaks the lease did not wait for it";
    ASSERT_EQ(fcntl(leased.get(), F_SETLEASE, F_UNLCK), 0) << strerror(errno);
  }

  void (*sigio_was)(int) = SIG_DFL;
};

TEST_F(Leases, AnOpenThatBreaksALeaseLeavesTheMountAnswering) {
  mount();
  // A write lease breaks at any other open, for reading too.
  const UniqueFd leased = lease(root / "usr/share/dfs/data.txt", O_WRONLY, F_WRLCK);
  auto opened =
      std::async(std::launch::async, [&] { return read_file(mnt / "usr/share/dfs/data.txt"); });
  expect_the_mount_answers_during_the_break(leased, opened);
  const ReadResult r = opened.get();
  EXPECT_EQ(r.error, 0) << log_text();
  EXPECT_EQ(r.bytes, "trusted data, version 1\n");
}

TEST_F(Leases, AnOpenThatAsksNotToWaitIsToldTheLeaseIsHeld) {
  mount();
  const UniqueFd leased = lease(root / "usr/share/dfs/data.txt", O_WRONLY, F_WRLCK);
  const UniqueFd opened(
      open((mnt / "usr/share/dfs/data.txt").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  EXPECT_FALSE(opened.valid());
  EXPECT_EQ(errno, EWOULDBLOCK) << "as open(2) says of a lease with O_NONBLOCK";
}

TEST_F(Leases, ATruncateThatBreaksALeaseLeavesTheMountAnswering) {
  const auto lower = root / "usr/share/dfs/notes.txt";
  ASSERT_TRUE(write_text(lower, "unpackaged notes\n"));
  mount(",unknown-allow=/usr/share/dfs/notes.txt");
  // A read lease breaks at a truncate.
  const UniqueFd leased = lease(lower, O_RDONLY, F_RDLCK);
  auto truncated = std::async(std::launch::async, [&] {
    return truncate((mnt / "usr/share/dfs/notes.txt").c_str(), 0) == 0 ? 0 : errno;
  });
  expect_the_mount_answers_during_the_break(leased, truncated);
  EXPECT_EQ(truncated.get(), 0);
  EXPECT_EQ(std::filesystem::file_size(lower), 0u);
}

}  // namespace
}  // namespace digestfs::test
