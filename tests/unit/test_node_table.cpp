// The FUSE layer's node table: one node per lower file (per path for hard-linked regular
// files), looked-up counts, forgetting, and the least recently looked-up entries.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "fs/node_table.hpp"
#include "tests/support/files.hpp"
#include "tests/support/test_env.hpp"

namespace digestfs::test {
namespace {

class Nodes : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(write_text(dir.path() / "a", "a"));
    ASSERT_TRUE(write_text(dir.path() / "b", "b"));
    ASSERT_EQ(link((dir.path() / "b").c_str(), (dir.path() / "b2").c_str()), 0);
  }
  fs::Node& look_up(const std::string& name) {
    UniqueFd fd(openat(table.root().fd.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    struct stat st;
    EXPECT_EQ(fstat(fd.get(), &st), 0);
    return table.remember(std::move(fd), st, table.root(), name);
  }
  TempDir dir;
  fs::NodeTable table{UniqueFd(open(dir.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC))};
};

TEST_F(Nodes, OneNodePerFileAndOnePerPathForHardLinks) {
  fs::Node& a = look_up("a");
  EXPECT_EQ(&look_up("a"), &a);
  EXPECT_EQ(a.nlookup, 2u);
  EXPECT_NE(&look_up("b"), &look_up("b2")) << "integrity is path-bound";
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(&table.node(table.id(a)), &a);
  EXPECT_EQ(table.id(table.root()), FUSE_ROOT_ID);
}

TEST_F(Nodes, ANodeGoesWhenTheKernelForgetsEveryLookup) {
  fs::Node& a = look_up("a");
  look_up("a");
  table.forget(table.id(a), 1);
  EXPECT_EQ(table.size(), 1u);
  table.forget(table.id(a), 1);
  EXPECT_EQ(table.size(), 0u);
  table.forget(FUSE_ROOT_ID, 5);
  EXPECT_EQ(table.root().nlookup, 1u) << "the root is never forgotten";
}

TEST_F(Nodes, TheLeastRecentEntriesAreNamedOnceEach) {
  look_up("a");
  look_up("b");
  look_up("b2");
  look_up("a");  // now the most recent
  auto oldest = table.least_recent(2);
  ASSERT_EQ(oldest.size(), 2u);
  EXPECT_EQ(oldest[0].parent, FUSE_ROOT_ID);
  std::set<std::string> names{oldest[0].name, oldest[1].name};
  EXPECT_EQ(names, (std::set<std::string>{"b", "b2"}));
  auto next = table.least_recent(5);
  ASSERT_EQ(next.size(), 1u) << "entries already named are not named again until looked up";
  EXPECT_EQ(next[0].name, "a");
  EXPECT_TRUE(table.parent_known(next[0]));
}

}  // namespace
}  // namespace digestfs::test
