#include <gtest/gtest.h>

#include "src/config/command_line.hpp"
#include "src/daemon/mount_args.hpp"
#include "tests/support/files.hpp"
#include "tests/support/test_env.hpp"

namespace digestfs::test {
namespace {

// As a command that mounts (digestfs-run) reads its command line: every option is its own.
Result<CommandLine> parse(std::vector<std::string> args, bool mount = true) {
  std::vector<char*> argv;
  static std::string prog = "digestfs-run";
  argv.push_back(prog.data());
  for (auto& a : args) argv.push_back(a.data());
  return parse_command_line(static_cast<int>(argv.size()), argv.data(), {"json"}, mount);
}

TEST(Settings, AToolTakesAndListsOnlyTheOptionsItUses) {
  auto sources = parse({"--keys=/k", "--root", "/r", "--jobs", "2", "stats"}, false);
  ASSERT_TRUE(sources.ok()) << sources.error().message;
  for (const std::string mount_only :
       {"--tpm=swtpm:port=1", "--mode=audit", "--prime", "--unknown=allow", "--measure-log=/l"}) {
    auto cl = parse({mount_only, "stats"}, false);
    ASSERT_FALSE(cl.ok()) << mount_only;
    EXPECT_NE(cl.error().message.find("is an option of the mount"), std::string::npos)
        << cl.error().message;
  }
  EXPECT_NE(options_help(false).find("--keys DIR"), std::string::npos);
  EXPECT_EQ(options_help(false).find("--tpm"), std::string::npos);
  EXPECT_EQ(options_help(false).find("--unknown "), std::string::npos);
  EXPECT_NE(options_help(true).find("--tpm TCTI"), std::string::npos);
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

Result<MountArgs> parse_mount(std::vector<std::string> args) {
  std::vector<char*> argv;
  static std::string prog = "digestfs";
  argv.push_back(prog.data());
  for (auto& a : args) argv.push_back(a.data());
  return parse_mount_args(static_cast<int>(argv.size()), argv.data());
}

TEST(Settings, ACommaBetweenDoubleQuotesBelongsToTheOptionsValue) {
  // As fstab and mount(8) write such a TCTI (libmount's rule for SELinux's context="a,b").
  auto m =
      parse_mount({"-o", "keys=/k,tpm=\"swtpm:host=127.0.0.1,port=2321\",pcr=12,ro", "/s", "/m"});
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->settings.tpm, "swtpm:host=127.0.0.1,port=2321");
  EXPECT_EQ(m->settings.pcr, 12u);
  EXPECT_TRUE(m->read_only);
  auto open = parse_mount({"-o", "tpm=\"swtpm:host=127.0.0.1,port=2321", "/s", "/m"});
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.error().message.find("double quote is not closed"), std::string::npos);
  // In the configuration file the value is the rest of the line.
  Settings from_file;
  ASSERT_TRUE(apply_config_text(from_file, "tpm = swtpm:host=127.0.0.1,port=2321\n", "f").ok());
  EXPECT_EQ(from_file.tpm, "swtpm:host=127.0.0.1,port=2321");
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
  auto flag_value = parse({"--allow-weak-digests=maybe"});
  ASSERT_FALSE(flag_value.ok());
  EXPECT_NE(flag_value.error().message.find("maybe"), std::string::npos);
  auto missing = parse({"--keys"});
  ASSERT_FALSE(missing.ok());
}

TEST(Settings, FlagsTakeYesOrNo) {
  auto on = parse({"--prime=yes", "--allow-weak-digests"});
  ASSERT_TRUE(on.ok()) << on.error().message;
  EXPECT_TRUE(on->settings.prime);
  EXPECT_TRUE(on->settings.sources.allow_weak_digests);
  auto off = parse({"--prime", "--prime=no"});
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->settings.prime);
}

class ConfigFile : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    const auto file = dir.path() / "digestfs.conf";
    EXPECT_TRUE(write_text(file, text));
    return file.string();
  }
  TempDir dir;
};

TEST_F(ConfigFile, ItsLinesSetTheSameOptionsAndTheCommandLineWins) {
  const std::string file = write(
      "# trust store and sources\n"
      "keys = /etc/pki/digestfs\n"
      "\n"
      "unknown = audit\n"
      "unknown-allow = /usr/local/*\n"
      "unknown-allow = /opt/*\n"
      "prime\n"
      "mode = audit\n");
  auto cl = parse({"--config-file", file, "--mode", "enforce"});
  ASSERT_TRUE(cl.ok()) << cl.error().message;
  EXPECT_EQ(cl->settings.keys, "/etc/pki/digestfs");
  EXPECT_EQ(cl->settings.policy.unknown, UnknownPolicy::Audit);
  EXPECT_EQ(cl->settings.policy.unknown_exceptions.size(), 2u);
  EXPECT_TRUE(cl->settings.prime);
  EXPECT_EQ(cl->settings.policy.mode, Mode::Enforce) << "the command line wins";
}

TEST_F(ConfigFile, AnUnknownKeyIsAnErrorWithItsLineNumber) {
  const std::string file = write("keys = /k\n# fine\nfrobnicate = 1\n");
  auto cl = parse({"--config-file", file});
  ASSERT_FALSE(cl.ok());
  EXPECT_NE(cl.error().message.find(file + ":3: unknown option 'frobnicate'"), std::string::npos)
      << cl.error().message;
  auto bad_value = parse({"--config-file", write("mode = sometimes\n")});
  ASSERT_FALSE(bad_value.ok());
  EXPECT_NE(bad_value.error().message.find(":1: mode: 'sometimes'"), std::string::npos)
      << bad_value.error().message;
  auto missing = parse({"--config-file", "/nonexistent/digestfs.conf"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ENOENT);
}

TEST_F(ConfigFile, ThePrintedConfigurationReadsBackTheSame) {
  auto first = parse({"--keys", "/k", "--unknown-allow", "/opt/*", "--unknown-allow", "/srv/*",
                      "--packages", "/p1", "--packages", "/p2", "--prime", "--config-fil"});
  ASSERT_FALSE(first.ok()) << "an unknown option is refused";
  auto cl = parse({"--keys", "/k", "--unknown-allow", "/opt/*", "--unknown-allow", "/srv/*",
                   "--packages", "/p1", "--packages", "/p2", "--prime", "--mode", "audit"});
  ASSERT_TRUE(cl.ok()) << cl.error().message;
  const std::string printed = print_config(cl->settings);
  auto again = parse({"--config-file", write(printed)});
  ASSERT_TRUE(again.ok()) << again.error().message << "\n" << printed;
  std::string reprinted = print_config(again->settings);
  reprinted = reprinted.substr(reprinted.find('\n') + 1);  // the "# read from" line
  EXPECT_EQ(reprinted, printed);
}

}  // namespace
}  // namespace digestfs::test
