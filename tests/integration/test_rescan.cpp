// digestfs-rescan against the reference: a root built with `rpm --root R -i` from the real
// packages and from packages signed at test time, damaged in many ways; the set of (path,
// flags) lines must equal what `rpm -Va --nodeps` reports on the same root.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "tests/support/files.hpp"
#include "tests/support/installed_header.hpp"
#include "tests/support/rpm_root.hpp"
#include "tests/support/test_env.hpp"

namespace digestfs::test {
namespace {

std::set<std::string> lines_of(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::set<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.insert(line);
  }
  return out;
}

class Rescan : public ::testing::Test {
 protected:
  void SetUp() override {
    DIGESTFS_REQUIRE(!built_fixtures().empty(), "test fixtures (rpmbuild, rpmsign, gpg)");
    DIGESTFS_REQUIRE(std::filesystem::is_directory(shared_rpm_data()), "../shared/data/rpm");
    const auto data = shared_rpm_data();
    root = work.path() / "root";
    keys = work.path() / "keys";
    std::filesystem::create_directories(keys);
    for (const auto& k : std::filesystem::directory_iterator(data / "keys")) {
      std::filesystem::create_symlink(k.path(), keys / k.path().filename());
    }
    std::filesystem::create_symlink(built_fixtures() / "keys/RPM-GPG-KEY-digestfs-test",
                                    keys / "test.asc");
    std::vector<std::filesystem::path> rpms{built_fixtures() / "rpms/dfs-base-1.0-1.noarch.rpm"};
    for (const char* p : {"hello-2.0-1.x86_64-signed.rpm", "rpm-sign-4.15.1-1.fc31.x86_64.rpm",
                          "crypto-policies-20210617-1.gitc776d3e.el8.noarch.rpm",
                          "freesrp-udev-0.3.0-1.25.x86_64.rpm"}) {
      rpms.push_back(data / "packages" / p);
    }
    // With rpm's own signature checks: these are all packages rpm itself accepts.
    ASSERT_TRUE(rpm_in_root(root, "-i --nodeps --noscripts --replacefiles", rpms));
  }

  // Runs digestfs-rescan with args; its stdout lines, and the exit status.
  std::pair<int, std::set<std::string>> rescan(const std::string& args) {
    const auto out = work.path() / "rescan.out";
    int status = run_shell(std::string(DIGESTFS_RESCAN_BINARY) + " --keys " + keys.string() +
                           " --root " + root.string() + " " + args + " >" + out.string() + " 2>" +
                           (work.path() / "rescan.err").string());
    return {status, lines_of(out)};
  }

  std::set<std::string> rpm_va() {
    const auto out = work.path() / "rpm.out";
    run_shell("rpm -Va --nodeps --root " + root.string() + " --dbpath /var/lib/rpm >" +
              out.string() + " 2>/dev/null");
    return lines_of(out);
  }

  ::testing::AssertionResult write(const std::string& path, const std::string& text) {
    std::filesystem::create_directories((root / path.substr(1)).parent_path());
    return write_text(root / path.substr(1), text);
  }

  TempDir work;
  std::filesystem::path root, keys;
};

TEST_F(Rescan, ACleanRootIsCleanForBoth) {
  auto [status, lines] = rescan("");
  EXPECT_EQ(status, 0) << *lines.begin();
  EXPECT_TRUE(lines.empty());
  EXPECT_TRUE(rpm_va().empty());
}

TEST_F(Rescan, ReportsExactlyWhatRpmVaReportsForTwelveKindsOfDamage) {
  const auto r = root.string();
  ASSERT_TRUE(write("/usr/share/dfs/data.txt", "trusted data, version X\n"));  // content, same size
  ASSERT_TRUE(append_text(root / "usr/share/doc/dfs-base/README", "more\n"));  // size
  ASSERT_EQ(chmod((root / "usr/bin/hello").c_str(), 0600), 0);                 // mode
  ASSERT_EQ(chown((root / "usr/share/man/man8/rpmsign.8.gz").c_str(), 1, 1), 0);  // owner, group
  ASSERT_EQ(
      run_shell("touch -d 2001-01-01 " + r + "/usr/lib/udev/rules.d/87-electronics-kitchen.rules"),
      0);
  std::filesystem::remove(root / "usr/share/dfs/hello-link");  // link target
  std::filesystem::create_symlink("/etc/passwd", root / "usr/share/dfs/hello-link");
  std::filesystem::remove(root / "usr/share/doc/hello-2.0/FAQ");                // removal
  ASSERT_TRUE(write("/etc/dfs/dfs.conf", "setting = 9\n"));                     // %config edit
  ASSERT_TRUE(write("/var/log/dfs.log", "present %ghost\n"));                   // %ghost present,
  ASSERT_EQ(chmod((root / "var/log/dfs.log").c_str(), 0600), 0);                // with other perms
  ASSERT_EQ(chmod((root / "usr/bin/dfs-hello").c_str(), 04755), 0);             // setuid added
  std::filesystem::remove(root / "etc/crypto-policies/back-ends/bind.config");  // %ghost absent
  ASSERT_EQ(chmod((root / "usr/lib/.build-id/a6").c_str(), 0700), 0);           // directory mode

  auto [status, ours] = rescan("");
  const auto reference = rpm_va();
  EXPECT_EQ(status, 4);
  EXPECT_EQ(ours, reference);
  // Eleven lines: an absent %ghost is no finding, for rpm or for us.
  EXPECT_EQ(ours.size(), 11u);
  EXPECT_TRUE(ours.count("..5....T.    /usr/share/dfs/data.txt"));
  EXPECT_TRUE(ours.count("missing   d /usr/share/doc/hello-2.0/FAQ"));
  EXPECT_TRUE(ours.count(".M.......    /usr/bin/dfs-hello"));
  EXPECT_TRUE(ours.count(".M.......  g /var/log/dfs.log")) << "a %ghost's permissions are checked";
  EXPECT_TRUE(ours.count(".M.......  a /usr/lib/.build-id/a6")) << "an %artifact directory";
}

// The one intended difference from rpm -Va: rpm trusts tags put back into an installed header
// outside its signed region; the rescan checks against the signed ones.
TEST_F(Rescan, ContentClaimedOutsideTheSignedRegionIsStillDamage) {
  const std::string evil = "#!/bin/sh\necho evil\n";
  ASSERT_TRUE(write("/usr/bin/hello", evil));
  ASSERT_TRUE(with_installed_header(root, "hello", [&](Header h) {
    claim_content_for_hello(h, sha256_hex(evil), static_cast<uint32_t>(evil.size()));
    return true;
  }));
  EXPECT_EQ(rpm_va(), (std::set<std::string>{".......T.    /usr/bin/hello"}));
  auto [status, ours] = rescan("");
  EXPECT_EQ(status, 4);
  EXPECT_EQ(ours, (std::set<std::string>{"S.5....T.    /usr/bin/hello"}));
}

TEST_F(Rescan, PathsLimitTheScan) {
  ASSERT_TRUE(write("/usr/share/dfs/data.txt", "trusted data, version X\n"));
  std::filesystem::remove(root / "usr/share/doc/hello-2.0/FAQ");
  auto [status, lines] = rescan("/usr/share/dfs");
  EXPECT_EQ(status, 4);
  EXPECT_EQ(lines, (std::set<std::string>{"..5....T.    /usr/share/dfs/data.txt"}));
  auto [clean, none] = rescan("/usr/lib /etc/dfs");
  EXPECT_EQ(clean, 0);
  EXPECT_TRUE(none.empty());
}

TEST_F(Rescan, UnknownFilesAreListedOnRequest) {
  ASSERT_TRUE(write("/usr/bin/dropped-in", "#!/bin/sh\n"));
  auto [status, lines] = rescan("--unknown /usr/bin");
  EXPECT_EQ(status, 4);
  EXPECT_EQ(lines, (std::set<std::string>{"unknown   /usr/bin/dropped-in"}));
  auto [plain, none] = rescan("/usr/bin");
  EXPECT_EQ(plain, 0);
}

TEST_F(Rescan, RejectedPackagesComeFirstAndTheReportHasAJsonForm) {
  ASSERT_TRUE(install_into_root(root, {built_fixtures() / "rpms/dfs-unsigned-1.0-1.noarch.rpm"}));
  ASSERT_TRUE(write("/usr/share/dfs/data.txt", "trusted data, version X\n"));
  auto [status, lines] = rescan("");
  EXPECT_EQ(status, 4);
  EXPECT_TRUE(lines.count("rejected  dfs-unsigned-1.0-1.noarch unsigned: header has no signature"));
  auto [js, json] = rescan("--json");
  EXPECT_EQ(js, 4);
  ASSERT_EQ(json.size(), 1u);
  const std::string doc = *json.begin();
  EXPECT_NE(doc.find("\"verdict\":\"unsigned\""), std::string::npos) << doc;
  EXPECT_NE(doc.find("{\"path\":\"/usr/share/dfs/data.txt\",\"package\":\"dfs-base-1.0-1.noarch\","
                     "\"columns\":\"..5....T.\""),
            std::string::npos)
      << doc;
  EXPECT_NE(doc.find("\"exit\":4"), std::string::npos);
}

TEST_F(Rescan, RepairRestoresEveryDamagedRegularFileByteForByte) {
  const std::vector<std::string> damaged = {"/usr/share/dfs/data.txt",
                                            "/usr/share/doc/dfs-base/README",
                                            "/usr/bin/hello",
                                            "/usr/share/man/man8/rpmsign.8.gz",
                                            "/usr/lib/udev/rules.d/87-electronics-kitchen.rules",
                                            "/usr/share/doc/hello-2.0/FAQ",
                                            "/etc/dfs/dfs.conf",
                                            "/usr/bin/dfs-hello",
                                            "/usr/share/crypto-policies/default-config"};
  std::map<std::string, std::string> original;
  for (const auto& p : damaged) original[p] = slurp(root / p.substr(1));
  ASSERT_TRUE(write("/usr/share/dfs/data.txt", "trusted data, version X\n"));
  ASSERT_TRUE(append_text(root / "usr/share/doc/dfs-base/README", "more\n"));
  ASSERT_EQ(chmod((root / "usr/bin/hello").c_str(), 0600), 0);
  ASSERT_EQ(chown((root / "usr/share/man/man8/rpmsign.8.gz").c_str(), 1, 1), 0);
  ASSERT_EQ(run_shell("touch -d 2001-01-01 " + root.string() +
                      "/usr/lib/udev/rules.d/87-electronics-kitchen.rules"),
            0);
  std::filesystem::remove(root / "usr/share/doc/hello-2.0/FAQ");
  ASSERT_TRUE(write("/etc/dfs/dfs.conf", "setting = 9\n"));
  ASSERT_EQ(chmod((root / "usr/bin/dfs-hello").c_str(), 04755), 0);
  ASSERT_TRUE(write("/usr/share/crypto-policies/default-config", "LEGACY\n"));
  ASSERT_EQ(rpm_va().size(), damaged.size());

  auto [status, lines] = rescan("--repair --packages " + (shared_rpm_data() / "packages").string() +
                                " --packages " + (built_fixtures() / "rpms").string());
  EXPECT_EQ(status, 1) << "problems found, all corrected";
  for (const auto& p : damaged) {
    EXPECT_TRUE(lines.count("repaired  " + p)) << p;
    EXPECT_EQ(slurp(root / p.substr(1)), original[p]) << p;
  }
  auto [after, none] = rescan("");
  EXPECT_EQ(after, 0);
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(rpm_va().empty());
}

TEST_F(Rescan, NothingIsRepairedFromAnUnverifiedSource) {
  TempDir sources;
  // The unsigned build of the same package: its bytes would even be right, but it proves nothing.
  std::filesystem::create_symlink(shared_rpm_data() / "packages/hello-2.0-1.x86_64.rpm",
                                  sources.path() / "hello-2.0-1.x86_64.rpm");
  ASSERT_TRUE(write("/usr/bin/hello", std::string(7120, 'x')));
  auto [status, lines] = rescan("--repair --packages " + sources.path().string() + " /usr/bin");
  EXPECT_EQ(status, 4);
  EXPECT_TRUE(
      lines.count("not repaired  /usr/bin/hello: no signed package hello-2.0-1.x86_64 among "
                  "the repair sources"))
      << *lines.begin();
  EXPECT_EQ(slurp(root / "usr/bin/hello"), std::string(7120, 'x'));
}

TEST_F(Rescan, OperationalAndUsageErrorsHaveFsckExitCodes) {
  EXPECT_EQ(run_shell(std::string(DIGESTFS_RESCAN_BINARY) + " --keys /nonexistent --root " +
                      root.string() + " 2>/dev/null"),
            8);
  EXPECT_EQ(run_shell(std::string(DIGESTFS_RESCAN_BINARY) + " --bogus 2>/dev/null"), 16);
  EXPECT_EQ(run_shell(std::string(DIGESTFS_RESCAN_BINARY) + " --keys " + keys.string() +
                      " relative/path 2>/dev/null"),
            16);
  EXPECT_EQ(run_shell(std::string(DIGESTFS_RESCAN_BINARY) + " --keys " + keys.string() +
                      " --repair 2>/dev/null"),
            16)
      << "--repair needs --packages";
}

}  // namespace
}  // namespace digestfs::test
