// The memo: one hash per version and algorithm, a new version hashed afresh, failures never
// remembered, concurrent first callers waiting for one hash, and hashing only once the
// version's ctime can no longer be reused.
#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "src/daemon/verdict_memo.hpp"

namespace digestfs::test {
namespace {

ContentStamp stamp(int64_t mtime_ns) { return ContentStamp{1, 42, 3, mtime_ns, 1000000000}; }

ContentDigest digest_of(uint8_t algo, unsigned char first) {
  const unsigned char bytes[] = {first, 2, 3};
  return ContentDigest{Digest(algo, bytes), 3};
}

TEST(VerdictMemo, RemembersEachVersionAndAlgorithmOnce) {
  VerdictMemo memo;
  int hashes = 0;
  auto hash = [&](uint8_t algo) {
    return [&, algo](BlockTree::Builder*) -> Result<ContentDigest> {
      ++hashes;
      return digest_of(algo, 1);
    };
  };
  auto first = memo.digest(stamp(1), digest_algo::kSha256, hash(digest_algo::kSha256));
  EXPECT_EQ(first.source, VerdictMemo::Source::Hashed);
  auto again = memo.digest(stamp(1), digest_algo::kSha256, hash(digest_algo::kSha256));
  EXPECT_EQ(again.source, VerdictMemo::Source::Remembered);
  ASSERT_TRUE(again.digest.ok());
  EXPECT_TRUE(again.digest->digest == first.digest->digest);
  EXPECT_EQ(memo.digest(stamp(1), digest_algo::kSha512, hash(digest_algo::kSha512)).source,
            VerdictMemo::Source::Hashed);
  EXPECT_EQ(memo.digest(stamp(1), digest_algo::kSha256, hash(digest_algo::kSha256)).source,
            VerdictMemo::Source::Remembered)
      << "both algorithms are kept for one version";
  EXPECT_EQ(hashes, 2);
  // A new version of the same inode (mtime moved): hashed again, the old digests dropped.
  EXPECT_EQ(memo.digest(stamp(2), digest_algo::kSha256, hash(digest_algo::kSha256)).source,
            VerdictMemo::Source::Hashed);
  EXPECT_EQ(memo.digest(stamp(2), digest_algo::kSha512, hash(digest_algo::kSha512)).source,
            VerdictMemo::Source::Hashed);
  EXPECT_EQ(hashes, 4);
}

TEST(VerdictMemo, AFailedHashIsNotRemembered) {
  VerdictMemo memo;
  int hashes = 0;
  auto failing = [&](BlockTree::Builder*) -> Result<ContentDigest> {
    ++hashes;
    return Error{ESTALE, "changed while hashing"};
  };
  EXPECT_FALSE(memo.digest(stamp(1), digest_algo::kSha256, failing).digest.ok());
  EXPECT_FALSE(memo.digest(stamp(1), digest_algo::kSha256, failing).digest.ok());
  EXPECT_EQ(hashes, 2);
}

// A hash that runs until it is let go: what other callers meet while a first one hashes.
struct HeldHash {
  VerdictMemo::HashFn fn() {
    return [this](BlockTree::Builder*) -> Result<ContentDigest> {
      ++hashes;
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return released; });
      return digest_of(digest_algo::kSha256, 7);
    };
  }
  void let_go() {
    {
      std::lock_guard lock(m);
      released = true;
    }
    cv.notify_all();
  }
  std::mutex m;
  std::condition_variable cv;
  bool released = false;
  std::atomic<int> hashes{0};
};

TEST(VerdictMemo, ConcurrentFirstCallersWaitForOneHash) {
  VerdictMemo memo;
  HeldHash slow;
  std::thread first([&] { memo.digest(stamp(1), digest_algo::kSha256, slow.fn()); });
  while (slow.hashes.load() == 0) std::this_thread::yield();
  VerdictMemo::Lookup second{Error{}, VerdictMemo::Source::Hashed, nullptr};
  std::thread waiter([&] { second = memo.digest(stamp(1), digest_algo::kSha256, slow.fn()); });
  slow.let_go();
  first.join();
  waiter.join();
  EXPECT_EQ(slow.hashes.load(), 1);
  EXPECT_EQ(second.source, VerdictMemo::Source::Remembered);
}

TEST(VerdictMemo, HashesOnlyOnceTheCtimeTickHasPassed) {
  VerdictMemo memo;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  // A version changed "now": a later write in the same tick would leave its ctime as it is.
  const int64_t ctime = now.tv_sec * 1000000000LL + now.tv_nsec + 30000000;  // 30 ms ahead
  const ContentStamp fresh{1, 43, 3, 0, ctime};
  int64_t hashed_at = 0;
  memo.digest(fresh, digest_algo::kSha256, [&](BlockTree::Builder*) -> Result<ContentDigest> {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME_COARSE, &t);
    hashed_at = t.tv_sec * 1000000000LL + t.tv_nsec;
    return digest_of(digest_algo::kSha256, 1);
  });
  EXPECT_GT(hashed_at, ctime);
}

// For the request loop: while another caller hashes the inode, or before the version's ctime
// has settled, nothing is hashed and nothing waits; a hash that would have to wait
// (EWOULDBLOCK) is not remembered; otherwise it hashes and remembers as digest does.
TEST(VerdictMemo, WithoutWaitingNothingWaits) {
  VerdictMemo memo;
  HeldHash slow;
  std::atomic<int>& hashes = slow.hashes;
  auto quick = [&](BlockTree::Builder*) -> Result<ContentDigest> {
    ++hashes;
    return digest_of(digest_algo::kSha256, 7);
  };
  std::thread first([&] { memo.digest(stamp(1), digest_algo::kSha256, slow.fn()); });
  while (hashes.load() == 0) std::this_thread::yield();
  EXPECT_FALSE(memo.digest_without_waiting(stamp(1), digest_algo::kSha256, quick))
      << "another caller is hashing it";
  slow.let_go();
  first.join();
  auto remembered = memo.digest_without_waiting(stamp(1), digest_algo::kSha256, quick);
  ASSERT_TRUE(remembered);
  EXPECT_EQ(remembered->source, VerdictMemo::Source::Remembered);
  EXPECT_EQ(hashes.load(), 1);

  struct timespec now;
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  const int64_t ahead = now.tv_sec * 1000000000LL + now.tv_nsec + 1000000000;  // 1 s ahead
  EXPECT_FALSE(memo.digest_without_waiting({1, 44, 3, 0, ahead}, digest_algo::kSha256, quick))
      << "its ctime has not settled";
  EXPECT_EQ(hashes.load(), 1);

  auto not_cached = [&](BlockTree::Builder*) -> Result<ContentDigest> {
    ++hashes;
    return Error{EWOULDBLOCK, "not in the page cache"};
  };
  EXPECT_FALSE(memo.digest_without_waiting(stamp(2), digest_algo::kSha256, not_cached));
  EXPECT_EQ(hashes.load(), 2);
  auto hashed = memo.digest_without_waiting(stamp(2), digest_algo::kSha256, quick);
  ASSERT_TRUE(hashed);
  EXPECT_EQ(hashed->source, VerdictMemo::Source::Hashed) << "the failure was not remembered";
  EXPECT_EQ(memo.digest(stamp(2), digest_algo::kSha256, quick).source,
            VerdictMemo::Source::Remembered);
  EXPECT_EQ(hashes.load(), 3);
}

// A hash that feeds `size` bytes of `fill` to the tree it is handed, as hash_fd would.
VerdictMemo::HashFn feeding(size_t size, unsigned char fill, int& hashes, int& with_tree) {
  return [=, &hashes, &with_tree](BlockTree::Builder* tree) -> Result<ContentDigest> {
    ++hashes;
    if (tree) {
      ++with_tree;
      const std::vector<unsigned char> bytes(size, fill);
      tree->update(bytes);
    }
    return digest_of(digest_algo::kSha256, fill);
  };
}

TEST(VerdictMemo, KeepsTheTreeOfTheBytesItHashedAndHashesAgainForOne) {
  VerdictMemo memo;
  int hashes = 0, with_tree = 0;
  // Remembered without a tree (block checks were not asked for): hashed again for one.
  memo.digest(stamp(1), digest_algo::kSha256, feeding(8192, 'a', hashes, with_tree));
  auto first =
      memo.digest(stamp(1), digest_algo::kSha256, feeding(8192, 'a', hashes, with_tree), true);
  EXPECT_EQ(first.source, VerdictMemo::Source::Hashed);
  ASSERT_TRUE(first.tree);
  EXPECT_EQ(first.tree->blocks(), 2u);
  auto again =
      memo.digest(stamp(1), digest_algo::kSha256, feeding(8192, 'a', hashes, with_tree), true);
  EXPECT_EQ(again.source, VerdictMemo::Source::Remembered);
  EXPECT_EQ(again.tree, first.tree);
  EXPECT_EQ(hashes, 2);
  EXPECT_EQ(with_tree, 1);
  EXPECT_EQ(memo.tree_stats().trees, 1u);
  memo.forget(stamp(1));
  EXPECT_EQ(memo.tree_stats().trees, 0u);
  EXPECT_EQ(memo.digest(stamp(1), digest_algo::kSha256, feeding(8192, 'a', hashes, with_tree), true)
                .source,
            VerdictMemo::Source::Hashed)
      << "a forgotten version is hashed from scratch";
}

TEST(VerdictMemo, TreesPastTheBudgetAreDroppedLeastRecentlyUsedFirst) {
  // Room for about two trees of 64 blocks (3 KiB of hashes and tags, and the tree's own size
  // each).
  VerdictMemo memo(7500);
  int hashes = 0, with_tree = 0;
  auto version = [](ino_t ino) { return ContentStamp{1, ino, 3, 1, 1000000000}; };
  auto open = [&](ino_t ino) {
    return memo.digest(version(ino), digest_algo::kSha256,
                       feeding(64 * BlockTree::kBlockSize, 'x', hashes, with_tree), true);
  };
  open(1);
  open(2);
  open(1);  // the most recent now
  open(3);  // over the budget: 2 goes
  EXPECT_EQ(memo.tree_stats().trees, 2u);
  EXPECT_EQ(memo.tree_stats().dropped, 1u);
  EXPECT_LE(memo.tree_stats().bytes, 7500u);
  hashes = 0;
  EXPECT_EQ(open(1).source, VerdictMemo::Source::Remembered);
  EXPECT_EQ(open(3).source, VerdictMemo::Source::Remembered);
  EXPECT_EQ(open(2).source, VerdictMemo::Source::Hashed) << "its tree was dropped";
  EXPECT_EQ(hashes, 1);
}

// Inodes come and go (a filesystem that never reuses their numbers gives each updated file a
// new one): past its limit the memo forgets the slots unused since its last sweep, and keeps
// those in use.
TEST(VerdictMemo, PastItsLimitItForgetsWhatNobodyUsedAndKeepsWhatIsUsed) {
  constexpr size_t kLimit = 256;
  VerdictMemo memo(SIZE_MAX, kLimit);
  auto version = [](ino_t ino) { return ContentStamp{1, ino, 3, 1, 1000000000}; };
  std::vector<int> hashes(20001, 0);
  auto digest = [&](ino_t ino) {
    return memo.digest(version(ino), digest_algo::kSha256, [&, ino](BlockTree::Builder*) {
      ++hashes[ino];
      return Result<ContentDigest>(digest_of(digest_algo::kSha256, 1));
    });
  };
  const ino_t hot = 1, cold = 2;
  digest(hot);
  digest(cold);
  for (ino_t ino = 3; ino <= 20000; ++ino) {
    digest(ino);
    if (ino % 8 == 0) {
      EXPECT_EQ(digest(hot).source, VerdictMemo::Source::Remembered) << ino;
    }
  }
  EXPECT_LE(memo.slots(), 4 * kLimit) << "the memo grows with every inode it ever saw";
  EXPECT_GE(memo.slots(), kLimit / 2);
  EXPECT_EQ(hashes[hot], 1) << "a slot in use was forgotten";
  EXPECT_EQ(digest(cold).source, VerdictMemo::Source::Hashed) << "forgotten, so hashed again";
  EXPECT_EQ(hashes[cold], 2);
}
}  // namespace
}  // namespace digestfs::test
