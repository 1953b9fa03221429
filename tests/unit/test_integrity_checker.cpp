// IntegrityChecker on lower files in a temp dir and a hand-built index: the decisions that
// need no mount, among them a change that lands while the file is being hashed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "src/base/hex.hpp"
#include "src/base/unique_fd.hpp"
#include "src/daemon/integrity_checker.hpp"
#include "tests/support/files.hpp"
#include "tests/support/test_env.hpp"

namespace digestfs::test {
namespace {

constexpr off_t kLarge = 2LL << 30;  // sparse: hashing it takes about a second
constexpr std::string_view kWrongDigest =
    "\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11"
    "\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11"
    "\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11";

class Checker : public ::testing::Test {
 protected:
  void SetUp() override {
    big = dir.path() / "big.bin";
    UniqueFd fd(open(big.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd);
    ASSERT_EQ(ftruncate(fd.get(), kLarge), 0);
    DigestIndex::Builder b;
    PackagedFile f;
    f.dir = "/usr/share/";
    f.name = "big.bin";
    f.digest = kWrongDigest;
    f.size = static_cast<uint64_t>(kLarge);
    f.mode = 0100644;
    b.add_package({"big-1-1.noarch", "test", "k", digest_algo::kSha256, 0, {}, {}, 0, {}}, {f});
    checker.set_index(b.build(1));
  }

  Decision judge() {
    UniqueFd fd(open(big.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st;
    EXPECT_EQ(fstat(fd.get(), &st), 0);
    return checker.judge_open(fd.get(), st, "/usr/share/big.bin");
  }

  TempDir dir;
  std::filesystem::path big;
  EventLog log{false, false};
  IntegrityChecker checker{Policy{}, log};
};

TEST_F(Checker, AnUnchangedMismatchIsADigestMismatch) {
  Decision d = judge();
  EXPECT_FALSE(d.allow);
  EXPECT_EQ(d.error, EACCES);
  EXPECT_EQ(reason_name(d.reason), "digest-mismatch");
  EXPECT_EQ(checker.counters().bytes_hashed.load(), static_cast<uint64_t>(kLarge));
  // Remembered: the second judgement hashes nothing.
  EXPECT_EQ(reason_name(judge().reason), "digest-mismatch");
  EXPECT_EQ(checker.counters().memo_hits.load(), 1u);
  EXPECT_EQ(checker.counters().bytes_hashed.load(), static_cast<uint64_t>(kLarge));
}

TEST_F(Checker, AChangeDuringHashingNeverPasses) {
  std::thread writer([this] {
    // Once the hash is under way: never before the stat that stamps the version judged.
    while (checker.counters().hashing.load() == 0) std::this_thread::yield();
    UniqueFd fd(open(big.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_EQ(pwrite(fd.get(), "x", 1, kLarge / 2), 1);
  });
  Decision d = judge();
  writer.join();
  EXPECT_FALSE(d.allow);
  EXPECT_EQ(reason_name(d.reason), "changed-while-hashing");
  EXPECT_EQ(
      checker.counters().denials_by_reason[static_cast<size_t>(Reason::ChangedWhileHashing)].load(),
      1u);
}

TEST_F(Checker, AuditModeAllowsButCounts) {
  IntegrityChecker audit{Policy{Mode::Audit, UnknownPolicy::Deny, ConfigPolicy::Audit, {}}, log};
  audit.set_index(checker.index());
  UniqueFd fd(open(big.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st;
  ASSERT_EQ(fstat(fd.get(), &st), 0);
  Decision d = audit.judge_open(fd.get(), st, "/usr/share/big.bin");
  EXPECT_TRUE(d.allow);
  EXPECT_FALSE(d.verified);
  EXPECT_EQ(audit.counters().audits.load(), 1u);
  Decision unknown = audit.judge_open(fd.get(), st, "/usr/share/other.bin");
  EXPECT_TRUE(unknown.allow);
}

// Writes `content` to `path`, and waits until the coarse clock the kernel stamps ctime from
// has moved past the file's ctime (judge_without_waiting hashes only such a version).
void write_settled(const std::filesystem::path& path, const std::string& content) {
  ASSERT_TRUE(write_text(path, content));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  const int64_t ctime = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
  for (;;) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (now.tv_sec * 1000000000LL + now.tv_nsec > ctime + 10000000) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// The request loop judges only what needs no waiting (judge_without_waiting): a remembered
// match, or a small file whose bytes are all in the page cache, hashed there (a memo miss). A
// file not cached, one larger than kHashedWithoutWaiting, and any refusal (judge_open's to
// wait for a reload, log and count) are left to judge_open, which finds the digest hashed for
// a refusal remembered.
TEST_F(Checker, WithoutWaitingOnlyAnAllowThatNeedsNoWaitingIsDecided) {
  const std::string content = "packaged bytes\n";
  const std::string large(IntegrityChecker::kHashedWithoutWaiting + 1, 'l');
  write_settled(dir.path() / "good.txt", content);
  write_settled(dir.path() / "bad.txt", content);
  write_settled(dir.path() / "large.txt", large);
  DigestIndex::Builder b;
  PackagedFile good, bad, big_one;
  good.dir = bad.dir = big_one.dir = "/usr/share/";
  good.name = "good.txt";
  bad.name = "bad.txt";
  big_one.name = "large.txt";
  const std::string digest = *from_hex(sha256_hex(content));  // the entries only view them
  const std::string large_digest = *from_hex(sha256_hex(large));
  good.digest = digest;
  bad.digest = kWrongDigest;
  big_one.digest = large_digest;
  good.size = bad.size = content.size();
  big_one.size = large.size();
  good.mode = bad.mode = big_one.mode = 0100644;
  b.add_package({"small-1-1.noarch", "test", "k", digest_algo::kSha256, 0, {}, {}, 0, {}},
                {good, bad, big_one});
  checker.set_index(b.build(3));
  auto judged = [&](const char* name, bool without_waiting) -> std::optional<Decision> {
    UniqueFd fd(open((dir.path() / name).c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st;
    EXPECT_EQ(fstat(fd.get(), &st), 0);
    const std::string path = std::string("/usr/share/") + name;
    if (without_waiting) return checker.judge_without_waiting(fd.get(), st, path);
    return checker.judge_open(fd.get(), st, path);
  };
  const CheckerCounters& c = checker.counters();

  ASSERT_TRUE(drop_from_page_cache(dir.path() / "good.txt"));
  EXPECT_FALSE(judged("good.txt", true)) << "not in the page cache";
  EXPECT_EQ(c.opens.load(), 0u);
  EXPECT_EQ(c.bytes_hashed.load(), 0u);
  ASSERT_EQ(slurp(dir.path() / "good.txt"), content);  // cached again
  const std::optional<Decision> hashed = judged("good.txt", true);
  ASSERT_TRUE(hashed);
  EXPECT_TRUE(hashed->allow);
  EXPECT_TRUE(hashed->verified);
  EXPECT_EQ(c.memo_misses.load(), 1u);
  EXPECT_EQ(c.bytes_hashed.load(), content.size());
  const std::optional<Decision> again = judged("good.txt", true);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->verified);
  EXPECT_EQ(c.opens.load(), 2u);
  EXPECT_EQ(c.memo_hits.load(), 1u);
  EXPECT_EQ(c.bytes_hashed.load(), content.size());

  EXPECT_FALSE(judged("large.txt", true)) << "too large to hash on the loop";
  EXPECT_EQ(c.bytes_hashed.load(), content.size());

  EXPECT_FALSE(judged("bad.txt", true)) << "a refusal";
  EXPECT_EQ(c.bytes_hashed.load(), 2 * content.size());
  EXPECT_EQ(c.denials.load(), 0u);
  EXPECT_EQ(reason_name(judged("bad.txt", false)->reason), "digest-mismatch");
  EXPECT_EQ(c.bytes_hashed.load(), 2 * content.size()) << "remembered from the loop's hash";
  EXPECT_EQ(c.denials.load(), 1u);
  EXPECT_EQ(c.opens.load(), 3u);
}

}  // namespace
}  // namespace digestfs::test
