// IntegrityChecker on lower files in a temp dir and a hand-built index: the decisions that
// need no mount, among them a change that lands while the file is being hashed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

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

// The request loop judges only what the memo remembers (judge_remembered): a version never
// hashed, and any refusal (judge_open's to wait for a reload, log and count), are left to
// judge_open; a remembered match is answered, counted as an open from the memo, with nothing
// hashed.
TEST_F(Checker, FromMemoryOnlyARememberedMatchIsDecided) {
  const std::string content = "packaged bytes\n";
  ASSERT_TRUE(write_text(dir.path() / "good.txt", content));
  ASSERT_TRUE(write_text(dir.path() / "bad.txt", content));
  DigestIndex::Builder b;
  PackagedFile good, bad;
  good.dir = bad.dir = "/usr/share/";
  good.name = "good.txt";
  bad.name = "bad.txt";
  const std::string digest = *from_hex(sha256_hex(content));  // the entry only views it
  good.digest = digest;
  bad.digest = kWrongDigest;
  good.size = bad.size = content.size();
  good.mode = bad.mode = 0100644;
  b.add_package({"small-1-1.noarch", "test", "k", digest_algo::kSha256, 0, {}, {}, 0, {}},
                {good, bad});
  checker.set_index(b.build(2));
  auto judged = [&](const char* name, bool from_memory) -> std::optional<Decision> {
    UniqueFd fd(open((dir.path() / name).c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st;
    EXPECT_EQ(fstat(fd.get(), &st), 0);
    const std::string path = std::string("/usr/share/") + name;
    if (from_memory) return checker.judge_remembered(fd.get(), st, path);
    return checker.judge_open(fd.get(), st, path);
  };
  const CheckerCounters& c = checker.counters();

  EXPECT_FALSE(judged("good.txt", true)) << "a version never hashed";
  EXPECT_EQ(c.opens.load(), 0u);
  EXPECT_EQ(c.bytes_hashed.load(), 0u);
  ASSERT_TRUE(judged("good.txt", false)->verified);
  const std::optional<Decision> again = judged("good.txt", true);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->allow);
  EXPECT_TRUE(again->verified);
  EXPECT_EQ(c.opens.load(), 2u);
  EXPECT_EQ(c.memo_hits.load(), 1u);
  EXPECT_EQ(c.bytes_hashed.load(), content.size());

  EXPECT_EQ(reason_name(judged("bad.txt", false)->reason), "digest-mismatch");
  EXPECT_FALSE(judged("bad.txt", true)) << "a refusal, though its digest is remembered";
  EXPECT_EQ(c.denials.load(), 1u);
  EXPECT_EQ(c.opens.load(), 3u);
}

}  // namespace
}  // namespace digestfs::test
