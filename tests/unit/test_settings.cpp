#include <gtest/gtest.h>

#include "src/command_line.hpp"

namespace digestfs::test {
namespace {

Result<CommandLine> parse(std::vector<std::string> args) {
  std::vector<char*> argv;
  static std::string prog = "digestfs-cache";
  argv.push_back(prog.data());
  for (auto& a : args) argv.push_back(a.data());
  return parse_command_line(static_cast<int>(argv.size()), argv.data(), {"json"});
}

TEST(Settings, OptionsParseInBothSpellings) {
  auto cl = parse({"--keys=/k", "--root", "/r", "--json", "stats"});
  ASSERT_TRUE(cl.ok()) << cl.error().message;
  EXPECT_EQ(cl->settings.keys, "/k");
  EXPECT_EQ(cl->settings.sources.root, "/r");
  EXPECT_TRUE(cl->settings.sources.read_rpmdb);
  EXPECT_TRUE(cl->flags.count("json"));
  EXPECT_EQ(cl->positional, std::vector<std::string>{"stats"});
}

TEST(Settings, PackagesAloneDoNotReadTheDatabase) {
  auto cl = parse({"--packages", "/p", "stats"});
  ASSERT_TRUE(cl.ok());
  EXPECT_FALSE(cl->settings.sources.read_rpmdb);
  auto both = parse({"--packages", "/p", "--root", "/", "stats"});
  ASSERT_TRUE(both.ok());
  EXPECT_TRUE(both->settings.sources.read_rpmdb);
}

TEST(Settings, BadInputIsRejectedWithTheOptionNamed) {
  auto unknown = parse({"--frobnicate=1"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("frobnicate"), std::string::npos);
  auto relative = parse({"--root", "relative/dir"});
  ASSERT_FALSE(relative.ok());
  EXPECT_NE(relative.error().message.find("relative/dir"), std::string::npos);
  auto jobs = parse({"--jobs", "many"});
  ASSERT_FALSE(jobs.ok());
  EXPECT_NE(jobs.error().message.find("many"), std::string::npos);
  auto flag_value = parse({"--allow-weak-digests=yes"});
  ASSERT_FALSE(flag_value.ok());
  auto missing = parse({"--keys"});
  ASSERT_FALSE(missing.ok());
}

}  // namespace
}  // namespace digestfs::test
