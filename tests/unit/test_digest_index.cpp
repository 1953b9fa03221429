#include <gtest/gtest.h>

#include <deque>

#include "cache/digest_index.hpp"

namespace digestfs::test {
namespace {

// PackagedFile only views its strings: the tests' strings live as long as the process.
std::string_view kept(std::string s) {
  static std::deque<std::string> strings;
  return strings.emplace_back(std::move(s));
}

PackagedFile file(std::string_view path, std::string digest, uint16_t mode = 0100644) {
  PackagedFile f;
  f.dir = path.substr(0, path.rfind('/') + 1);
  f.name = path.substr(path.rfind('/') + 1);
  f.digest = kept(std::move(digest));
  f.mode = mode;
  f.user = "root";
  f.group = "root";
  return f;
}

std::shared_ptr<const DigestIndex> sample() {
  DigestIndex::Builder b;
  b.add_package({"a-1-1.noarch", "a.rpm", "k", digest_algo::kSha256, 0, {}, {}, 0, {}},
                {file("/usr/bin/a", std::string(32, 'a')), file("/usr/bin", "", 040755),
                 file("/usr/share/x", std::string(32, 'x'))});
  b.add_package({"b-1-1.noarch", "b.rpm", "k", digest_algo::kSha256, 0, {}, {}, 0, {}},
                {file("/usr/share/x", std::string(32, 'y')), file("/usr/bin", "", 040755)});
  return b.build(7);
}

TEST(DigestIndex, LookupFindsExactPathsOnly) {
  auto ix = sample();
  EXPECT_EQ(ix->generation(), 7u);
  EXPECT_EQ(ix->file_count(), 5u);
  ASSERT_EQ(ix->lookup("/usr/bin/a").size(), 1u);
  EXPECT_EQ(ix->lookup("/usr/bin/a")[0].path(), "/usr/bin/a");
  EXPECT_TRUE(ix->lookup("/usr/bin/").empty());
  EXPECT_TRUE(ix->lookup("/usr/bin/a/").empty());
  EXPECT_TRUE(ix->lookup("usr/bin/a").empty());
  EXPECT_TRUE(ix->lookup("/usr/bin/ab").empty());
  EXPECT_TRUE(ix->lookup("").empty());
}

TEST(DigestIndex, EveryClaimIsKeptAndDifferingOnesConflict) {
  auto ix = sample();
  auto x = ix->lookup("/usr/share/x");
  ASSERT_EQ(x.size(), 2u);
  EXPECT_EQ(x[0].package().nevra, "a-1-1.noarch");
  EXPECT_EQ(x[1].package().nevra, "b-1-1.noarch");
  EXPECT_EQ(x[1].digest().bytes[0], 'y');
  auto conflicts = ix->conflicts();
  ASSERT_EQ(conflicts.size(), 1u) << "a directory owned twice is no conflict";
  EXPECT_EQ(conflicts[0].path, "/usr/share/x");
}

TEST(DigestIndex, ListingIsSortedByPath) {
  auto ix = sample();
  for (size_t i = 1; i < ix->file_count(); ++i) {
    EXPECT_LE(ix->entry(i - 1).path(), ix->entry(i).path());
  }
}

TEST(DigestIndex, AnEmptyIndexFindsNothing) {
  DigestIndex::Builder b;
  auto ix = b.build(1);
  EXPECT_EQ(ix->file_count(), 0u);
  EXPECT_TRUE(ix->lookup("/usr/bin/a").empty());
}

PackageRecord package(std::string nevra) {
  return {std::move(nevra), "rpmdb:/var/lib/rpm#1", "k", digest_algo::kSha256, 0, {}, {}, 0, {}};
}

std::vector<std::string> listing(const DigestIndex& ix) {
  std::vector<std::string> out;
  for (size_t i = 0; i < ix.file_count(); ++i) {
    const FileEntry e = ix.entry(i);
    out.push_back(e.path() + " " + e.package().nevra + " " +
                  std::string(reinterpret_cast<const char*>(e.digest().bytes.data()),
                              e.digest().bytes.size()) +
                  " " + std::string(e.user()) + ":" + std::string(e.group()) + " -> " +
                  std::string(e.linkto()));
  }
  return out;
}

TEST(DigestIndex, PackagesKeptFromAnEarlierSnapshotReadAsIfReadAgain) {
  PackagedFile link = file("/usr/lib/libc.so", "", 0120777);
  link.linkto = "libc.so.6";
  PackagedFile owned = file("/usr/share/c/owned", std::string(32, 'o'));
  owned.user = "daemon";
  const std::vector<PackagedFile> c = {file("/usr/share/x", std::string(32, 'z')),
                                       file("/usr/bin/c", std::string(32, 'c')), link, owned};
  DigestIndex::Builder first;
  first.add_package(package("a-1-1"), {file("/usr/bin/a", std::string(32, 'a'))});
  first.add_package(package("b-1-1"), {file("/usr/share/x", std::string(32, 'y')), link});
  auto earlier = first.build(1);

  DigestIndex::Builder reload;
  reload.keep_from(earlier, {1});
  reload.add_package(package("c-2-1"), c);
  auto reloaded = reload.build(2);

  DigestIndex::Builder scratch;
  scratch.add_package(package("b-1-1"), {file("/usr/share/x", std::string(32, 'y')), link});
  scratch.add_package(package("c-2-1"), c);
  auto fresh = scratch.build(2);

  EXPECT_EQ(reloaded->reused_packages(), 1u);
  EXPECT_EQ(listing(*reloaded), listing(*fresh));
  EXPECT_TRUE(reloaded->lookup("/usr/bin/a").empty()) << "a package not kept is gone";
  ASSERT_EQ(reloaded->lookup("/usr/share/x").size(), 2u)
      << "a new claim on a kept path joins it, not a path of its own";
  EXPECT_EQ(reloaded->lookup("/usr/lib/libc.so").size(), 2u);
  EXPECT_EQ(reloaded->lookup("/usr/share/c/owned")[0].user(), "daemon");
  ASSERT_EQ(reloaded->conflicts().size(), 1u);
  EXPECT_EQ(reloaded->conflicts()[0].path, "/usr/share/x");
  EXPECT_EQ(reloaded->conflicts()[0].packages, (std::vector<std::string>{"b-1-1", "c-2-1"}));
}

TEST(DigestIndex, ReplacingPackagesOverAndOverAsksForARebuildFromScratch) {
  std::vector<PackagedFile> files;
  for (int i = 0; i < 200; ++i) {
    files.push_back(file(kept("/usr/share/doc/long-enough-name-" + std::to_string(i)),
                         std::string(32, 'd')));
  }
  DigestIndex::Builder first;
  first.add_package(package("doc-1-1"), files);
  first.add_package(package("other-1-1"), {file("/usr/bin/other", std::string(32, 'o'))});
  std::shared_ptr<const DigestIndex> ix = first.build(1);
  EXPECT_FALSE(ix->worth_compacting());
  int reloads = 0;
  while (!ix->worth_compacting() && reloads < 100) {
    // The updated package's digests are new bytes in the arena; the old ones stay behind.
    for (auto& f : files) f.digest = kept(std::string(32, static_cast<char>('a' + reloads % 26)));
    uint32_t other = 0;
    while (ix->packages()[other].nevra != "other-1-1") ++other;
    DigestIndex::Builder next;
    next.keep_from(ix, {other});
    next.add_package(package("doc-1-" + std::to_string(reloads + 2)), files);
    ix = next.build(static_cast<uint64_t>(reloads) + 2);
    ++reloads;
    ASSERT_EQ(ix->lookup("/usr/share/doc/long-enough-name-7").size(), 1u);
  }
  EXPECT_LT(reloads, 100) << "dropped strings never ask for compaction";
  EXPECT_GT(reloads, 1) << "one update should not ask for a rebuild";
  DigestIndex::Builder scratch;
  scratch.add_package(package("doc-1-x"), files);
  EXPECT_FALSE(scratch.build(1)->worth_compacting());
}

TEST(DigestIndex, OneSnapshotRefusesPackagesBeyondWhatARecordCanName) {
  DigestIndex::Builder b;
  for (size_t i = 0; i < DigestIndex::kMaxPackages; ++i) {
    ASSERT_TRUE(b.add_package(package("p"), {}));
  }
  EXPECT_FALSE(b.add_package(package("one-too-many"), {file("/x", std::string(32, 'x'))}));
  auto ix = b.build(1);
  EXPECT_EQ(ix->packages().size(), DigestIndex::kMaxPackages);
  EXPECT_TRUE(ix->lookup("/x").empty());
}

}  // namespace
}  // namespace digestfs::test
