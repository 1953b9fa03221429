// Packages built and signed at test time (tests/fixtures/make-fixtures): the file kinds and
// signature failures the real data does not cover, from .rpm files and from an rpm database.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "src/base/hex.hpp"
#include "tests/support/index_helpers.hpp"
#include "tests/support/rpm_root.hpp"
#include "tests/support/test_env.hpp"

namespace digestfs::test {
namespace {

class Fixtures : public ::testing::Test {
 protected:
  void SetUp() override {
    DIGESTFS_REQUIRE(!built_fixtures().empty(), "test fixtures (rpmbuild, rpmsign, gpg)");
    fx = built_fixtures();
  }
  const RejectedHeader* rejected(const DigestIndex& index, const std::string& name) {
    for (const auto& r : index.rejected()) {
      if (r.nevra.starts_with(name + "-1.0")) return &r;
    }
    return nullptr;
  }
  std::filesystem::path fx;
};

void expect_fixture_verdicts(const DigestIndex& index,
                             const std::function<const RejectedHeader*(const std::string&)>& find) {
  std::set<std::string> accepted;
  for (const auto& p : index.packages()) accepted.insert(p.nevra);
  EXPECT_EQ(accepted, (std::set<std::string>{"dfs-base-1.0-1.noarch", "dfs-other-1.0-1.noarch",
                                             "dfs-sha512-1.0-1.noarch", "dfs-large-1.0-1.noarch",
                                             "dfs-busybox-1.0-1.noarch"}));
  const std::map<std::string, HeaderVerdict> expected = {
      {"dfs-badsig", HeaderVerdict::BadSignature},
      {"dfs-foreign", HeaderVerdict::UntrustedKey},
      {"dfs-unsigned", HeaderVerdict::Unsigned},
      {"dfs-md5", HeaderVerdict::WeakDigest},
  };
  for (const auto& [name, verdict] : expected) {
    const RejectedHeader* r = find(name);
    ASSERT_NE(r, nullptr) << name << " should be rejected";
    EXPECT_EQ(verdict_name(r->verdict), verdict_name(verdict)) << name << ": " << r->reason;
  }
  EXPECT_FALSE(index.contains("/usr/share/dfsbad/file.txt"));
  EXPECT_FALSE(index.contains("/usr/share/dfsforeign/file.txt"));
  EXPECT_FALSE(index.contains("/usr/share/dfsunsigned/file.txt"));
  EXPECT_FALSE(index.contains("/usr/share/dfsmd5/file.txt"));
}

TEST_F(Fixtures, PackageFilesGetTheirVerdicts) {
  auto index = load_packages(fx / "keys", {fx / "rpms"});
  ASSERT_TRUE(index);
  expect_fixture_verdicts(*index, [&](const std::string& n) { return rejected(*index, n); });
}

TEST_F(Fixtures, FileAttributesAreKept) {
  auto index = load_packages(fx / "keys", {fx / "rpms"});
  ASSERT_TRUE(index);
  auto conf = index->lookup("/etc/dfs/dfs.conf");
  ASSERT_EQ(conf.size(), 1u);
  EXPECT_TRUE(conf[0].is_config());
  EXPECT_EQ(conf[0].package().nevra, "dfs-base-1.0-1.noarch");

  auto ghost = index->lookup("/var/log/dfs.log");
  ASSERT_EQ(ghost.size(), 1u);
  EXPECT_TRUE(ghost[0].is_ghost());
  EXPECT_TRUE(ghost[0].digest().empty()) << "a %ghost file has no content to check";

  auto link = index->lookup("/usr/share/dfs/hello-link");
  ASSERT_EQ(link.size(), 1u);
  EXPECT_TRUE(S_ISLNK(link[0].mode()));
  EXPECT_EQ(link[0].linkto(), "../../bin/dfs-hello");
  EXPECT_TRUE(link[0].digest().empty());

  auto hello = index->lookup("/usr/bin/dfs-hello");
  ASSERT_EQ(hello.size(), 1u);
  EXPECT_EQ(hello[0].mode(), S_IFREG | 0755);
  EXPECT_EQ(hello[0].user(), "root");
  EXPECT_EQ(hello[0].digest().bytes.size(), 32u);
}

TEST_F(Fixtures, Sha512DigestsAreIndexedAsSha512) {
  auto index = load_packages(fx / "keys", {fx / "rpms"});
  ASSERT_TRUE(index);
  auto e = index->lookup("/usr/share/dfs512/file.txt");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].algo(), digest_algo::kSha512);
  EXPECT_EQ(e[0].digest().bytes.size(), 64u);
}

TEST_F(Fixtures, Md5DigestsAreTrustedOnlyWhenAllowed) {
  auto index = load_packages(fx / "keys", {fx / "rpms" / "dfs-md5-1.0-1.noarch.rpm"}, true);
  ASSERT_TRUE(index);
  auto e = index->lookup("/usr/share/dfsmd5/file.txt");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].algo(), digest_algo::kMd5);
}

TEST_F(Fixtures, APathClaimedByTwoPackagesKeepsBothClaims) {
  auto index = load_packages(fx / "keys", {fx / "rpms"});
  ASSERT_TRUE(index);
  auto claims = index->lookup("/usr/share/dfs/shared.txt");
  ASSERT_EQ(claims.size(), 2u);
  EXPECT_NE(claims[0].package().nevra, claims[1].package().nevra);
  auto conflicts = index->conflicts();
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].path, "/usr/share/dfs/shared.txt");
  EXPECT_EQ(conflicts[0].packages.size(), 2u);
}

TEST_F(Fixtures, AnotherKeyTrustsNothing) {
  auto index = load_packages(fx / "other-keys", {fx / "rpms"});
  ASSERT_TRUE(index);
  // Only dfs-foreign is signed by the other key.
  ASSERT_EQ(index->packages().size(), 1u);
  EXPECT_EQ(index->packages()[0].nevra, "dfs-foreign-1.0-1.noarch");
}

TEST_F(Fixtures, InstalledHeadersGetTheSameVerdictsFromTheDatabase) {
  TempDir root;
  // Installing without rpm's own signature checks lets the bad header into the database.
  std::vector<std::filesystem::path> rpms;
  for (const auto& e : std::filesystem::directory_iterator(fx / "rpms")) rpms.push_back(e.path());
  ASSERT_TRUE(rpm_in_root(root.path(),
                          "-i --nodeps --noscripts --nosignature --nodigest --replacefiles", rpms));
  auto index = load_root(fx / "keys", root.path());
  ASSERT_TRUE(index.ok()) << index.error().message;
  expect_fixture_verdicts(**index, [&](const std::string& n) { return rejected(**index, n); });
  for (const auto& p : (*index)->packages()) {
    EXPECT_TRUE(p.origin.starts_with("rpmdb:")) << p.origin;
  }
}

TEST_F(Fixtures, AReloadReusesUnchangedHeadersAndJudgesNewOnes) {
  TempDir root;
  auto install = [&](const std::string& rpm) {
    return install_into_root(root.path(), {fx / "rpms" / rpm});
  };
  ASSERT_TRUE(install("dfs-base-1.0-1.noarch.rpm"));
  ASSERT_TRUE(install("dfs-foreign-1.0-1.noarch.rpm"));
  auto trust = TrustStore::load(fx / "keys");
  ASSERT_TRUE(trust.ok());
  SourceOptions options;
  options.root = root.path();
  auto first = load_digest_index(*trust, options, 1);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ((*first)->reused_packages(), 0u);

  // No file conflicts here: when another package replaces one of a package's files, rpm
  // rewrites that package's file states in place, under the same header number and SHA-1;
  // the reload then reads it again too (next test).
  ASSERT_TRUE(install("dfs-sha512-1.0-1.noarch.rpm"));
  auto second = load_digest_index(*trust, options, 2, *first);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ((*second)->reused_packages(), 1u) << "dfs-base unchanged; dfs-sha512 is new";
  EXPECT_EQ((*second)->packages().size(), 2u);
  ASSERT_EQ((*second)->rejected().size(), 1u) << "a rejected header is judged again";
  EXPECT_EQ((*second)->rejected()[0].verdict, HeaderVerdict::UntrustedKey);
  // The reused package's entries are the same as when it was read.
  auto before = (*first)->lookup("/usr/share/dfs/data.txt");
  auto after = (*second)->lookup("/usr/share/dfs/data.txt");
  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_TRUE(before[0].digest() == after[0].digest());
  EXPECT_EQ(after[0].mode(), before[0].mode());
  EXPECT_EQ(after[0].package().nevra, "dfs-base-1.0-1.noarch");
  EXPECT_EQ((*second)->lookup("/usr/share/dfs512/file.txt").size(), 1u);
}

// Everything a snapshot says, one line per claim, package and rejection, in a stable order:
// two snapshots that describe the same trust the same way compare equal.
std::vector<std::string> describe(const DigestIndex& index) {
  std::vector<std::string> lines;
  for (size_t i = 0; i < index.file_count(); ++i) {
    const FileEntry e = index.entry(i);
    lines.push_back(
        "file " + e.path() + " " + std::to_string(e.algo()) + ":" + to_hex(e.digest().bytes) +
        " size=" + std::to_string(e.size()) + " mode=" + std::to_string(e.mode()) + " " +
        std::string(e.user()) + ":" + std::string(e.group()) + " link=" + std::string(e.linkto()) +
        " caps=" + std::string(e.caps()) + " mtime=" + std::to_string(e.mtime()) +
        " rdev=" + std::to_string(e.rdev()) + " attrs=" + std::to_string(e.attrs()) +
        " verify=" + std::to_string(e.verify_flags()) + " state=" + std::to_string(e.state()) +
        " shared=" + std::to_string(index.shared(i)) + " of " + e.package().nevra);
  }
  for (const auto& p : index.packages()) {
    lines.push_back("package " + p.nevra + " " + p.origin + " " + p.signer + " files=" +
                    std::to_string(p.file_count) + " algo=" + std::to_string(p.digest_algo) +
                    " region=" + to_hex(p.region_sha256) + " sha1=" + p.sha1_header);
  }
  for (const auto& r : index.rejected()) {
    lines.push_back("rejected " + r.nevra + " " + r.origin + " " +
                    std::string(verdict_name(r.verdict)) + " " + r.reason);
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

TEST_F(Fixtures, AReloadSaysWhatALoadFromScratchSaysAfterEveryChange) {
  TempDir root;
  auto trust = TrustStore::load(fx / "keys");
  ASSERT_TRUE(trust.ok());
  SourceOptions options;
  options.root = root.path();
  const auto rpm = [&](const std::string& name) {
    return fx / "rpms" / (name + "-1.0-1.noarch.rpm");
  };
  ASSERT_TRUE(install_into_root(root.path(), {rpm("dfs-base"), rpm("dfs-foreign")}));
  auto snapshot = load_digest_index(*trust, options, 1);
  ASSERT_TRUE(snapshot.ok()) << snapshot.error().message;

  const std::string install = "-i --nodeps --noscripts --nosignature --replacefiles";
  const std::string erase = "-e --nodeps --noscripts";
  struct Step {
    std::string rpm_args;
    std::filesystem::path file;  // a package file to install, or a package name to erase
  };
  struct Change {
    std::string what;
    std::vector<Step> steps;
    size_t reused;  // headers the reload keeps as read before
  };
  const std::vector<Change> changes = {
      // dfs-other replaces dfs-base's shared.txt: rpm marks it replaced in dfs-base's header,
      // in place, so dfs-base is read again although its number and SHA-1 stay.
      {"install dfs-other over dfs-base's shared file", {{install, rpm("dfs-other")}}, 0},
      {"install dfs-sha512", {{install, rpm("dfs-sha512")}}, 2},
      {"erase dfs-other", {{erase, "dfs-other"}}, 2},
      {"erase dfs-base, install dfs-busybox",
       {{erase, "dfs-base"}, {install, rpm("dfs-busybox")}},
       1},
      {"install dfs-base again", {{install, rpm("dfs-base")}}, 2},
  };
  uint64_t generation = 1;
  for (const auto& change : changes) {
    SCOPED_TRACE(change.what);
    for (const auto& step : change.steps) {
      ASSERT_TRUE(rpm_in_root(root.path(), step.rpm_args, {step.file}));
    }
    ++generation;
    auto reloaded = load_digest_index(*trust, options, generation, *snapshot);
    ASSERT_TRUE(reloaded.ok()) << reloaded.error().message;
    auto scratch = load_digest_index(*trust, options, generation);
    ASSERT_TRUE(scratch.ok()) << scratch.error().message;
    EXPECT_EQ(describe(**reloaded), describe(**scratch));
    EXPECT_EQ((*reloaded)->reused_packages(), change.reused);
    // The lookup table, not only the records, finds every claim.
    for (size_t i = 0; i < (*scratch)->file_count(); ++i) {
      const std::string path = (*scratch)->entry(i).path();
      EXPECT_EQ((*reloaded)->lookup(path).size(), (*scratch)->lookup(path).size()) << path;
    }
    snapshot = std::move(reloaded);
  }
  // The last snapshot was reached by reloads only; dfs-base's shared.txt is its own again.
  auto shared = (*snapshot)->lookup("/usr/share/dfs/shared.txt");
  ASSERT_EQ(shared.size(), 1u);
  EXPECT_EQ(shared[0].package().nevra, "dfs-base-1.0-1.noarch");
}

}  // namespace
}  // namespace digestfs::test
