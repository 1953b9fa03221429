// Verdicts on the real distribution-signed packages and database in ../shared/data/rpm,
// exactly as its SOURCES.md table gives them.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "src/base/hex.hpp"
#include "tests/support/index_helpers.hpp"
#include "tests/support/test_env.hpp"

namespace digestfs::test {
namespace {

std::optional<HeaderVerdict> verdict_of(const DigestIndex& index, const std::string& file) {
  for (const auto& p : index.packages()) {
    if (std::filesystem::path(p.origin).filename() == file) return HeaderVerdict::Accepted;
  }
  for (const auto& r : index.rejected()) {
    if (std::filesystem::path(r.origin).filename() == file) return r.verdict;
  }
  return std::nullopt;
}

const std::map<std::string, HeaderVerdict> kExpected = {
    {"rpm-sign-4.15.1-1.fc31.x86_64.rpm", HeaderVerdict::Accepted},
    {"freesrp-udev-0.3.0-1.25.x86_64.rpm", HeaderVerdict::Accepted},
    {"crypto-policies-20210617-1.gitc776d3e.el8.noarch.rpm", HeaderVerdict::Accepted},
    {"hello-2.0-1.x86_64-signed.rpm", HeaderVerdict::Accepted},
    {"hello-2.0-1.x86_64-v3-signed.rpm", HeaderVerdict::Accepted},
    {"hello-2.0-1.x86_64.rpm", HeaderVerdict::Unsigned},
    {"hello-2.0-1.x86_64-corrupted.rpm", HeaderVerdict::Corrupted},
    {"hello-2.0-1.x86_64-signed-with-subkey.rpm", HeaderVerdict::UntrustedKey},
};

class SharedData : public ::testing::Test {
 protected:
  void SetUp() override {
    DIGESTFS_REQUIRE(std::filesystem::is_directory(shared_rpm_data() / "packages"),
                     shared_rpm_data().string());
  }
  std::filesystem::path data = shared_rpm_data();
};

TEST_F(SharedData, EveryPackageGetsTheVerdictOfTheTable) {
  auto index = load_packages(data / "keys", {data / "packages"});
  ASSERT_TRUE(index);
  for (const auto& [file, expected] : kExpected) {
    auto got = verdict_of(*index, file);
    ASSERT_TRUE(got.has_value()) << file << " was neither accepted nor rejected";
    EXPECT_EQ(verdict_name(*got), verdict_name(expected)) << file;
  }
  EXPECT_EQ(index->packages().size(), 5u);
  EXPECT_EQ(index->rejected().size(), 3u);
}

TEST_F(SharedData, EachPackageAloneGetsTheSameVerdict) {
  for (const auto& [file, expected] : kExpected) {
    auto index = load_packages(data / "keys", {data / "packages" / file});
    ASSERT_TRUE(index);
    auto got = verdict_of(*index, file);
    ASSERT_TRUE(got.has_value()) << file;
    EXPECT_EQ(verdict_name(*got), verdict_name(expected)) << file;
  }
}

TEST_F(SharedData, RejectionsNameThePackageAndTheReason) {
  auto index = load_packages(data / "keys", {data / "packages"});
  ASSERT_TRUE(index);
  for (const auto& r : index->rejected()) {
    EXPECT_EQ(r.nevra, "hello-2.0-1.x86_64");
    EXPECT_FALSE(r.reason.empty());
  }
  bool saw_nokey = false;
  for (const auto& r : index->rejected()) {
    if (r.verdict == HeaderVerdict::UntrustedKey) {
      saw_nokey = r.reason.find("15217ee0") != std::string::npos;
    }
  }
  EXPECT_TRUE(saw_nokey) << "the untrusted key id is named in the reason";
}

TEST_F(SharedData, AcceptedPackagesIndexTheirFilesWithSignedDigests) {
  auto index = load_packages(data / "keys", {data / "packages"});
  ASSERT_TRUE(index);
  auto hello = index->lookup("/usr/bin/hello");
  ASSERT_EQ(hello.size(), 2u);  // signed and v3-signed both claim it, with one content
  EXPECT_EQ(hello[0].algo(), digest_algo::kSha256);
  EXPECT_EQ(to_hex(hello[0].digest().bytes),
            "c89fa87aeb1143969c0b6be9334b21d932f77f74e8f60120b5de316406369cf0");
  EXPECT_EQ(hello[0].size(), 7120u);
  EXPECT_TRUE(index->conflicts().empty()) << "identical claims are no conflict";
  // crypto-policies has %ghost and %config entries; the index keeps their attributes.
  size_t ghosts = 0, configs = 0;
  for (size_t i = 0; i < index->file_count(); ++i) {
    ghosts += index->entry(i).is_ghost();
    configs += index->entry(i).is_config();
  }
  EXPECT_GT(ghosts, 0u);
  EXPECT_GT(configs, 0u);
}

TEST_F(SharedData, OnlyTheFedora35KeyRejectsEveryPackage) {
  TempDir keys;
  std::filesystem::create_symlink(data / "keys/RPM-GPG-KEY-fedora-35-primary",
                                  keys.path() / "RPM-GPG-KEY-fedora-35-primary");
  auto index = load_packages(keys.path(), {data / "packages"});
  ASSERT_TRUE(index);
  EXPECT_EQ(index->packages().size(), 0u);
  EXPECT_EQ(index->file_count(), 0u);
  EXPECT_EQ(index->rejected().size(), kExpected.size());
}

class SharedDatabase : public SharedData {
 protected:
  void SetUp() override {
    SharedData::SetUp();
    if (IsSkipped()) return;
    std::filesystem::create_directories(root.path() / "var/lib/rpm");
    std::filesystem::copy_file(data / "rpmdb/libuuid-Packages",
                               root.path() / "var/lib/rpm/Packages");
  }
  TempDir root;
};

TEST_F(SharedDatabase, LibuuidLoadsWithTheRhel8Key) {
  TempDir keys;
  std::filesystem::create_symlink(data / "keys/RPM-GPG-KEY-redhat8-release",
                                  keys.path() / "RPM-GPG-KEY-redhat8-release");
  auto index = load_root(keys.path(), root.path());
  ASSERT_TRUE(index.ok()) << index.error().message;
  ASSERT_EQ((*index)->packages().size(), 1u);
  EXPECT_EQ((*index)->packages()[0].nevra, "libuuid-2.32.1-42.el8_8.x86_64");
  EXPECT_EQ((*index)->packages()[0].signer, "199e2f91fd431d51");
  EXPECT_EQ((*index)->file_count(), 7u);
  EXPECT_TRUE((*index)->rejected().empty());
  EXPECT_TRUE((*index)->contains("/usr/lib64/libuuid.so.1.3.0"));
}

TEST_F(SharedDatabase, LibuuidIsRejectedWithTheFedora35Key) {
  TempDir keys;
  std::filesystem::create_symlink(data / "keys/RPM-GPG-KEY-fedora-35-primary",
                                  keys.path() / "RPM-GPG-KEY-fedora-35-primary");
  auto index = load_root(keys.path(), root.path());
  ASSERT_TRUE(index.ok()) << index.error().message;
  EXPECT_EQ((*index)->packages().size(), 0u);
  EXPECT_EQ((*index)->file_count(), 0u);
  ASSERT_EQ((*index)->rejected().size(), 1u);
  EXPECT_EQ((*index)->rejected()[0].verdict, HeaderVerdict::UntrustedKey);
  EXPECT_EQ((*index)->rejected()[0].nevra, "libuuid-2.32.1-42.el8_8.x86_64");
}

TEST_F(SharedDatabase, ACorruptedDatabaseIsAClearError) {
  {
    std::ofstream damage(root.path() / "var/lib/rpm/Packages", std::ios::trunc);
    damage << std::string(8192, 'x');
  }
  auto index = load_root(data / "keys", root.path());
  ASSERT_FALSE(index.ok());
  EXPECT_NE(index.error().message.find("cannot open rpm database"), std::string::npos)
      << index.error().message;
}

TEST_F(SharedDatabase, AMissingDatabaseIsAClearError) {
  TempDir empty;
  auto index = load_root(data / "keys", empty.path());
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.error().code, ENOENT);
  EXPECT_NE(index.error().message.find("no rpm database"), std::string::npos);
}

// librpm would make an empty sqlite database there, even to read, and then prefer it to a
// Packages file put there later.
TEST_F(SharedDatabase, ADatabaseDirectoryWithNoDatabaseIsAClearErrorAndStaysEmpty) {
  TempDir empty;
  const auto dir = empty.path() / "var/lib/rpm";
  std::filesystem::create_directories(dir);
  auto index = load_root(data / "keys", empty.path());
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.error().code, ENOENT);
  EXPECT_NE(index.error().message.find("no rpm database at " + dir.string()), std::string::npos)
      << index.error().message;
  EXPECT_TRUE(std::filesystem::is_empty(dir));
}

}  // namespace
}  // namespace digestfs::test
