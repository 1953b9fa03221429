// The FUSE layer's node table: one node per lower file (per path for hard-linked regular
// files), looked-up counts, forgetting, the least recently looked-up entries, and nodes kept
// as file handles that cost no fd.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <utility>

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
  fs::Node& look_up(const std::string& name) { return look_up_in(table, name); }
  fs::Node& look_up_in(fs::NodeTable& t, const std::string& name) {
    struct stat st;
    fs::Node* node = t.look_up(t.root(), t.root_fd(), name.c_str(), st);
    EXPECT_NE(node, nullptr) << name << ": " << std::strerror(errno);
    return node ? *node : t.root();
  }
  // The path an operation's fd of the node names, as path-bound checks read it.
  std::string path_of(fs::Node& node) {
    const fs::NodeFd fd = handles.path_fd(node);
    if (!fd) return std::string("error: ") + std::strerror(errno);
    std::error_code ec;
    return std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd.get()), ec);
  }
  // This kernel gives connectable handles (Linux 6.13) and the tests run as root: in CI the
  // handle paths must be tested, elsewhere they may be missing.
  bool handles_expected() {
    if (handles.by_handle()) return true;
    EXPECT_FALSE(running_in_ci()) << "no connectable file handles here";
    return false;
  }
  TempDir dir;
  fs::NodeTable table{UniqueFd(open(dir.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)), false};
  fs::NodeTable handles{UniqueFd(open(dir.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)), true};
};

TEST_F(Nodes, WithoutHandlesEveryNodeHoldsAnFd) {
  EXPECT_FALSE(table.by_handle());
  fs::Node& a = look_up("a");
  EXPECT_FALSE(a.handle.has_value());
  EXPECT_EQ(table.fds(), 1u);
  EXPECT_TRUE(table.path_fd(a));
}

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

TEST_F(Nodes, FilesAreKeptAsHandlesThatCostNoFdAndOpenAtTheirPath) {
  if (!handles_expected()) GTEST_SKIP() << "no connectable file handles here";
  fs::Node& a = look_up_in(handles, "a");
  look_up_in(handles, "b");
  look_up_in(handles, "b2");
  EXPECT_TRUE(a.handle.has_value());
  EXPECT_EQ(handles.fds(), 2u) << "only the hard-linked paths keep fds of their own";
  EXPECT_EQ(path_of(a), (dir.path() / "a").string());
  ASSERT_EQ(std::rename((dir.path() / "a").c_str(), (dir.path() / "a2").c_str()), 0);
  EXPECT_EQ(path_of(a), (dir.path() / "a2").string()) << "the path is the file's real one";
  UniqueFd read(handles.open(a, O_RDONLY));
  ASSERT_TRUE(read) << std::strerror(errno);
  char byte = 0;
  EXPECT_EQ(pread(read.get(), &byte, 1, 0), 1);
  EXPECT_EQ(byte, 'a');
}

TEST_F(Nodes, AFileRemovedWhileOpenStillAnswersThroughItsOpenHandle) {
  if (!handles_expected()) GTEST_SKIP() << "no connectable file handles here";
  fs::Node& a = look_up_in(handles, "a");
  auto open_handle = std::make_shared<const UniqueFd>(handles.open(a, O_RDONLY));
  ASSERT_TRUE(open_handle->valid());
  handles.hold(a, open_handle);
  ASSERT_EQ(unlink((dir.path() / "a").c_str()), 0);
  {
    struct stat st;
    const fs::NodeFd fd = handles.path_fd(a);
    ASSERT_TRUE(fd) << std::strerror(errno);
    ASSERT_EQ(fstatat(fd.get(), "", &st, AT_EMPTY_PATH), 0);
    EXPECT_EQ(st.st_nlink, 0u);
  }
  open_handle.reset();
  handles.let_go(a);
  EXPECT_FALSE(handles.path_fd(a));
  EXPECT_EQ(errno, ESTALE) << "a removed file's handle no longer opens";
}

TEST_F(Nodes, AHandleOfAFileThatGainedALinkDoesNotNameItsPath) {
  if (!handles_expected()) GTEST_SKIP() << "no connectable file handles here";
  fs::Node& a = look_up_in(handles, "a");
  ASSERT_EQ(link((dir.path() / "a").c_str(), (dir.path() / "a-link").c_str()), 0);
  struct stat st;
  ASSERT_EQ(stat((dir.path() / "a").c_str(), &st), 0);
  EXPECT_FALSE(handles.names_its_path(a, st));
  EXPECT_TRUE(handles.names_its_path(look_up_in(handles, "b"), st))
      << "a per-path node keeps its own fd";
}

// The fds kept for reopening verified files (WarmOpens), as the open path uses them.
class WarmNodes : public Nodes {
 protected:
  void SetUp() override {
    Nodes::SetUp();
    ASSERT_TRUE(write_text(dir.path() / "c", "c"));
    handles.warm().set_capacity(1);
  }
  // What the open path keeps for `n` after a verified open of it in `t`.
  static fs::WarmOpen opened(fs::NodeTable& t, fs::Node& n) {
    return fs::WarmOpen{
        std::make_shared<const UniqueFd>(t.open(n, O_RDONLY)), {}, nullptr, 0, t.warm().renames()};
  }
  // Nodes a and c, opened in that order and kept (one fd: a's is closed for c's).
  std::pair<fs::Node&, fs::Node&> a_then_c() {
    fs::Node& a = look_up_in(handles, "a");
    fs::Node& c = look_up_in(handles, "c");
    handles.warm().keep(a, opened(handles, a));
    handles.warm().keep(c, opened(handles, c));
    return {a, c};
  }
};

TEST_F(WarmNodes, AVerdictJudgedBeforeARenameIsNotKept) {
  if (!handles_expected()) GTEST_SKIP() << "no connectable file handles here";
  fs::Node& a = look_up_in(handles, "a");
  const fs::WarmOpen judged_before = opened(handles, a);
  handles.warm().drop_all();  // a rename seen while the open was being judged
  handles.warm().keep(a, judged_before);
  EXPECT_EQ(handles.warm().find(a), nullptr);
  handles.warm().keep(a, opened(handles, a));
  EXPECT_NE(handles.warm().find(a), nullptr);
  handles.warm().drop_all();
  EXPECT_EQ(handles.warm().find(a), nullptr);
  EXPECT_EQ(handles.warm().size_counter().load(), 0u);
}

TEST_F(WarmNodes, TheOldestFdIsClosedPastTheCapacityAndAForgottenNodesAtOnce) {
  if (!handles_expected()) GTEST_SKIP() << "no connectable file handles here";
  fs::Node& a = look_up_in(handles, "a");
  fs::Node& c = look_up_in(handles, "c");
  const fs::WarmOpen kept_a = opened(handles, a);
  handles.warm().keep(a, kept_a);
  const fs::WarmOpen kept_c = opened(handles, c);
  handles.warm().keep(c, kept_c);
  EXPECT_EQ(kept_a.fd.use_count(), 1) << "the oldest fd is closed";
  ASSERT_NE(handles.warm().find(a), nullptr) << "its verdict stays";
  EXPECT_EQ(handles.warm().find(a)->fd, nullptr);
  ASSERT_NE(handles.warm().find(c), nullptr);
  EXPECT_NE(handles.warm().find(c)->fd, nullptr);
  EXPECT_EQ(handles.warm().size_counter().load(), 1u);
  handles.forget(handles.id(c), 1);
  EXPECT_EQ(handles.warm().size_counter().load(), 0u);
  EXPECT_EQ(kept_c.fd.use_count(), 1) << "the forgotten node's kept fd is closed";
}

TEST_F(WarmNodes, AVerdictLeftWithoutItsFdEndsWithARenameOrAChange) {
  if (!handles_expected()) GTEST_SKIP() << "no connectable file handles here";
  auto [a, c] = a_then_c();
  ASSERT_NE(handles.warm().find(a), nullptr);
  handles.warm().drop(a);  // its file changed behind the mount
  EXPECT_EQ(handles.warm().find(a), nullptr);
  handles.warm().keep(a, opened(handles, a));
  ASSERT_NE(handles.warm().find(c), nullptr);
  ASSERT_EQ(handles.warm().find(c)->fd, nullptr);
  handles.warm().drop_all();
  EXPECT_EQ(handles.warm().find(c), nullptr) << "a verdict judged before a rename";
  EXPECT_EQ(handles.warm().find(a), nullptr);
}

TEST_F(WarmNodes, TheVerdictsLeftTakeNoMoreThanTheirBudget) {
  if (!handles_expected()) GTEST_SKIP() << "no connectable file handles here";
  handles.warm().set_capacity(1, 0);
  auto [a, c] = a_then_c();
  EXPECT_EQ(handles.warm().find(a), nullptr);
  EXPECT_NE(handles.warm().find(c), nullptr);
}

TEST_F(WarmNodes, AForgottenNodesVerdictLeavesItsList) {
  if (!handles_expected()) GTEST_SKIP() << "no connectable file handles here";
  auto [a, c] = a_then_c();
  handles.forget(handles.id(a), 1);
  // Were the forgotten node still listed, these would touch it (ASan runs the unit tests).
  fs::Node& again = look_up_in(handles, "a");
  handles.warm().keep(again, opened(handles, again));
  ASSERT_NE(handles.warm().find(c), nullptr);
  EXPECT_EQ(handles.warm().find(c)->fd, nullptr);
  handles.warm().drop_all();
  handles.warm().keep(c, opened(handles, c));
  EXPECT_NE(handles.warm().find(c), nullptr);
}

TEST_F(WarmNodes, NodesWithoutHandlesKeepNone) {
  table.warm().set_capacity(1);
  fs::Node& a = look_up("a");
  table.warm().keep(a, opened(table, a));
  EXPECT_EQ(table.warm().find(a), nullptr);
}

}  // namespace
}  // namespace digestfs::test
