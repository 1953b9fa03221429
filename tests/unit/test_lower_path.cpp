// index_path_of: a lower fd named by the path the index knows it by.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "src/base/unique_fd.hpp"
#include "src/daemon/lower_path.hpp"
#include "tests/support/files.hpp"
#include "tests/support/test_env.hpp"

namespace digestfs::test {
namespace {

class LowerPath : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir.path() / "src/bin");
    ASSERT_TRUE(write_text(dir.path() / "src/bin/ls", "x"));
    ASSERT_TRUE(write_text(dir.path() / "outside", "x"));
  }
  UniqueFd open_at(const std::string& rel) {
    return UniqueFd(open((dir.path() / rel).c_str(), O_PATH | O_CLOEXEC));
  }
  TempDir dir;
};

TEST_F(LowerPath, TheSourceStandsForItsPrefix) {
  const PathMapping usr{(dir.path() / "src").string(), "/usr"};
  EXPECT_EQ(index_path_of(open_at("src/bin/ls").get(), usr), "/usr/bin/ls");
  EXPECT_EQ(index_path_of(open_at("src").get(), usr), "/usr");
  const PathMapping slash_ended{(dir.path() / "src").string(), "/usr/"};
  EXPECT_EQ(index_path_of(open_at("src/bin/ls").get(), slash_ended), "/usr/bin/ls");
  const PathMapping root{(dir.path() / "src").string(), "/"};
  EXPECT_EQ(index_path_of(open_at("src/bin/ls").get(), root), "/bin/ls");
  EXPECT_EQ(index_path_of(open_at("src").get(), root), "/");
  const PathMapping whole_tree{"/", "/"};
  EXPECT_EQ(index_path_of(open_at("src/bin/ls").get(), whole_tree),
            (dir.path() / "src/bin/ls").string());
}

TEST_F(LowerPath, FilesOutsideTheSourceOrDeletedHaveNoPath) {
  const PathMapping usr{(dir.path() / "src").string(), "/usr"};
  EXPECT_EQ(index_path_of(open_at("outside").get(), usr), "");
  // A sibling whose name starts like the source is not under it.
  std::filesystem::create_directories(dir.path() / "src2");
  ASSERT_TRUE(write_text(dir.path() / "src2/f", "x"));
  EXPECT_EQ(index_path_of(open_at("src2/f").get(), usr), "");
  UniqueFd gone = open_at("src/bin/ls");
  ASSERT_EQ(unlink((dir.path() / "src/bin/ls").c_str()), 0);
  EXPECT_EQ(index_path_of(gone.get(), usr), "");
  EXPECT_EQ(index_path_of(-1, usr), "");
}

}  // namespace
}  // namespace digestfs::test
