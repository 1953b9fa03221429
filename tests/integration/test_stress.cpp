// Stress: readers through the mount while files change behind it and through it and the
// digest cache reloads. Every byte a reader is given must be the packaged byte at that
// offset; afterwards the daemon must have no more fds and not much more memory than before.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "tests/support/mount_fixture.hpp"

namespace digestfs::test {
namespace {

using namespace std::chrono_literals;

// What `rpm -q --dump` says each regular file under /usr of `packages` must hold (SHA-256).
std::map<std::string, std::string> packaged_sha256(const std::filesystem::path& root,
                                                   const std::string& packages,
                                                   const std::filesystem::path& scratch) {
  const auto dump = scratch / "dump.txt";
  EXPECT_EQ(run_shell("rpm --root " + root.string() + " --dbpath /var/lib/rpm -q --dump " +
                      packages + " >" + dump.string()),
            0);
  std::map<std::string, std::string> digests;
  std::istringstream lines(slurp(dump));
  for (std::string line; std::getline(lines, line);) {
    std::istringstream f(line);
    std::string path, size, mtime, digest, mode;
    f >> path >> size >> mtime >> digest >> mode;
    const bool regular = (std::stoul(mode, nullptr, 8) & S_IFMT) == S_IFREG;
    if (regular && path.starts_with("/usr/") && digest.size() == 64) digests[path] = digest;
  }
  return digests;
}

void write_at(const std::filesystem::path& p, const std::string& bytes) {
  int fd = open(p.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;  // a reader-side rename may have it in flux: the next round retries
  EXPECT_EQ(pwrite(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()))
      << p << ": " << std::strerror(errno);
  close(fd);
}

uint64_t daemon_rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6));
  }
  return 0;
}

// The daemon's fds once the kernel's forgets have reached it: the same count twice, 100 ms
// apart (forgets arrive in batches, and the daemon answers none of them).
size_t settled_fds(pid_t pid) {
  size_t last = open_fds(pid);
  for (int i = 0; i < 300; ++i) {
    std::this_thread::sleep_for(100ms);
    const size_t now = open_fds(pid);
    if (now == last) return now;
    last = now;
  }
  return last;
}

// The kernel forgets every unused inode: the daemon closes what it held for them.
void forget_kernel_inodes() {
  sync();
  EXPECT_TRUE(write_text("/proc/sys/vm/drop_caches", "2\n"));
}

class Stress : public MountFixture {
 protected:
  struct Reader {
    uint64_t clean_reads = 0, refusals = 0, foreign_bytes = 0;
    std::string first_foreign;
  };

  // Reads `path` through the mount in 64 KiB chunks; every chunk the kernel returns must be
  // the pristine bytes at that offset.
  void read_and_check(const std::filesystem::path& rel, const std::string& pristine, Reader& r) {
    int fd = open((mnt / rel).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      ++r.refusals;
      return;
    }
    std::string chunk(65536, '\0');
    size_t offset = 0;
    for (ssize_t n; (n = read(fd, chunk.data(), chunk.size())) != 0; offset += size_t(n)) {
      if (n < 0) {
        ++r.refusals;
        close(fd);
        return;
      }
      if (pristine.compare(offset, size_t(n), chunk, 0, size_t(n)) != 0) {
        ++r.foreign_bytes;
        if (r.first_foreign.empty()) r.first_foreign = rel.string() + "@" + std::to_string(offset);
      }
    }
    close(fd);
    ++r.clean_reads;
  }
};

TEST_F(Stress, ReadersNeverSeeAnUnverifiedByteWhileFilesChangeAndTheCacheReloads) {
  install({fx / "rpms/dfs-other-1.0-1.noarch.rpm"});
  mount(",rw");
  const auto digests = packaged_sha256(root, "dfs-base dfs-other hello", work.path());
  std::map<std::filesystem::path, std::string> pristine;
  for (const auto& [path, digest] : digests) {
    const auto rel = std::filesystem::path(path).relative_path();
    pristine[rel] = slurp(root / rel);
    ASSERT_EQ(sha256_hex(pristine[rel]), digest)
        << "fixture tree differs from its package: " << path;
  }
  ASSERT_GE(pristine.size(), 6u);
  const std::vector<std::filesystem::path> changing = {
      "usr/share/dfs/data.txt", "usr/share/dfs/big.bin", "usr/share/dfs/shared.txt",
      "usr/share/doc/dfs-base/README"};

  // Warm up once so that the baseline holds the daemon's steady state.
  Reader warm;
  for (const auto& [rel, bytes] : pristine) read_and_check(rel, bytes, warm);
  ASSERT_EQ(warm.refusals, 0u) << log_text();
  forget_kernel_inodes();
  const size_t fds_at_start = settled_fds(pid);
  const uint64_t rss_at_start = daemon_rss_kib(pid);

  std::atomic<bool> stop{false};
  std::atomic<int> running{0};
  std::vector<std::thread> threads;
  auto spawn = [&](auto body) {
    ++running;
    threads.emplace_back([&, body] {
      body();
      --running;
    });
  };
  std::vector<Reader> readers(8);
  for (auto& r : readers) {
    spawn([&] {
      while (!stop) {
        for (const auto& [rel, bytes] : pristine) read_and_check(rel, bytes, r);
      }
    });
  }
  // Behind the mount: overwrite in place, and replace by rename, then restore.
  spawn([&] {
    for (unsigned round = 0; !stop; ++round) {
      const auto& rel = changing[round % changing.size()];
      std::string tampered = pristine[rel];
      tampered[tampered.size() / 2] ^= 0x20;
      if (round % 2) {
        write_at(root / rel, tampered);
        write_at(root / rel, pristine[rel]);
      } else {
        const auto tmp = root / rel.parent_path() / ".stress-tmp";
        EXPECT_TRUE(write_text(tmp, tampered));
        std::filesystem::rename(tmp, root / rel);
        std::this_thread::sleep_for(2ms);
        EXPECT_TRUE(write_text(tmp, pristine[rel]));
        std::filesystem::rename(tmp, root / rel);
      }
    }
  });
  // Through the mount: a writer changes a packaged file and puts it back.
  spawn([&] {
    const std::filesystem::path rel = "usr/share/dfs/other.txt";
    std::string tampered = pristine[rel];
    tampered[0] ^= 0x20;
    while (!stop) {
      write_at(mnt / rel, tampered);
      write_at(mnt / rel, pristine[rel]);
    }
  });
  // Reloads: SIGHUP, and database changes the watcher sees.
  spawn([&] {
    for (unsigned round = 0; !stop; ++round) {
      kill(pid, SIGHUP);
      if (round % 10 == 0) {
        EXPECT_TRUE(rpm_in_root(root,
                                "-i --justdb --nodeps --noscripts --replacepkgs --replacefiles",
                                {fx / "rpms/dfs-other-1.0-1.noarch.rpm"}));
      }
      std::this_thread::sleep_for(30ms);
    }
  });

  std::this_thread::sleep_for(8s);
  stop = true;
  for (int i = 0; i < 300 && running > 0; ++i) std::this_thread::sleep_for(100ms);
  const bool deadlocked = running > 0;
  if (deadlocked) kill(pid, SIGKILL);  // lets the stuck threads' syscalls return
  for (auto& t : threads) t.join();
  ASSERT_FALSE(deadlocked) << "threads still blocked in the mount 30 s after the stop\n"
                           << log_text();

  uint64_t clean = 0, refused = 0;
  for (const auto& r : readers) {
    EXPECT_EQ(r.foreign_bytes, 0u) << "a reader was given unverified bytes: " << r.first_foreign;
    clean += r.clean_reads;
    refused += r.refusals;
  }
  EXPECT_GT(clean, 1000u);
  EXPECT_GT(refused, 0u) << "the modifications never reached a reader: the test proves nothing";
  EXPECT_NE(log_text().find("DENY"), std::string::npos);

  // Everything restored: every file reads again (once the kernel has let go of the names it
  // cached for files replaced by rename, at most its entry timeout), never a foreign byte,
  // and the daemon holds what it held before.
  Reader after;
  EXPECT_TRUE(within(10000ms, [&] {
    after.refusals = 0;
    for (const auto& [rel, bytes] : pristine) read_and_check(rel, bytes, after);
    return after.refusals == 0;
  })) << log_text();
  EXPECT_EQ(after.foreign_bytes, 0u);
  forget_kernel_inodes();
  EXPECT_TRUE(within(30000ms, [&] { return open_fds(pid) <= fds_at_start; }))
      << "fd leak in the daemon: " << open_fds(pid) << " fds, " << fds_at_start << " before";
  EXPECT_LT(daemon_rss_kib(pid), rss_at_start + 32 * 1024) << "daemon memory grew under stress";
  EXPECT_EQ(kill(pid, 0), 0) << "the daemon died under stress\n" << log_text();
}

}  // namespace
}  // namespace digestfs::test
