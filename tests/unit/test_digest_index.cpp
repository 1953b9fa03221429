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
  b.add_package({"a-1-1.noarch", "a.rpm", "k", digest_algo::kSha256, 0, {}, {}},
                {file("/usr/bin/a", std::string(32, 'a')), file("/usr/bin", "", 040755),
                 file("/usr/share/x", std::string(32, 'x'))});
  b.add_package({"b-1-1.noarch", "b.rpm", "k", digest_algo::kSha256, 0, {}, {}},
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

}  // namespace
}  // namespace digestfs::test
