#include <gtest/gtest.h>

#include "cache/trust_store.hpp"
#include "tests/support/files.hpp"
#include "tests/support/test_env.hpp"

namespace digestfs::test {
namespace {

TEST(TrustStore, AMissingDirectoryIsAnError) {
  auto store = TrustStore::load("/nonexistent/digestfs/keys");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ENOENT);
  EXPECT_NE(store.error().message.find("/nonexistent/digestfs/keys"), std::string::npos);
}

TEST(TrustStore, ADirectoryWithoutKeysIsAnError) {
  TempDir dir;
  ASSERT_TRUE(write_text(dir.path() / "notes.txt", "not a key\n"));
  auto store = TrustStore::load(dir.path());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("no usable OpenPGP public key"), std::string::npos);
}

TEST(TrustStore, AMalformedKeyFileDoesNotHideTheOthers) {
  DIGESTFS_REQUIRE(std::filesystem::is_directory(shared_rpm_data() / "keys"), "shared keys");
  TempDir dir;
  std::filesystem::create_symlink(shared_rpm_data() / "keys/rpm.org-rsa-2048-test.pub",
                                  dir.path() / "good.asc");
  ASSERT_TRUE(write_text(dir.path() / "broken.asc",
                         "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot base64 at all !!!\n"
                         "-----END PGP PUBLIC KEY BLOCK-----\n"));
  auto store = TrustStore::load(dir.path());
  ASSERT_TRUE(store.ok()) << store.error().message;
  ASSERT_EQ(store->keys().size(), 1u);
  EXPECT_EQ(store->keys()[0].key_id, "4344591e1964c5fc");
  ASSERT_EQ(store->problems().size(), 1u);
  EXPECT_EQ(store->problems()[0].file.filename(), "broken.asc");
}

TEST(TrustStore, EveryKeyBlockOfAFileIsRead) {
  DIGESTFS_REQUIRE(std::filesystem::is_directory(shared_rpm_data() / "keys"), "shared keys");
  TempDir dir;
  std::filesystem::create_symlink(shared_rpm_data() / "keys/RPM-GPG-KEY-redhat8-release",
                                  dir.path() / "RPM-GPG-KEY-redhat8-release");
  auto store = TrustStore::load(dir.path());
  ASSERT_TRUE(store.ok()) << store.error().message;
  std::set<std::string> ids;
  for (const auto& k : store->keys()) ids.insert(k.key_id);
  EXPECT_TRUE(ids.count("199e2f91fd431d51"));
  EXPECT_TRUE(ids.count("45689c882fa658e0"));
}

}  // namespace
}  // namespace digestfs::test
