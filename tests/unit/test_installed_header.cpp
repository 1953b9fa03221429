// Of an installed header, only what its signature covers is trusted. librpm lets a tag put
// back outside the signed region override the signed one, and the signature still verifies;
// the install-time file states kept there can only leave files out.
#include <gtest/gtest.h>

#include "cache/header_files.hpp"
#include "cache/signed_region.hpp"
#include "cache/trust_store.hpp"
#include "src/base/hex.hpp"
#include "tests/support/index_helpers.hpp"
#include "tests/support/installed_header.hpp"
#include "tests/support/rpm_root.hpp"
#include "tests/support/test_env.hpp"

namespace digestfs::test {
namespace {

// /usr/bin/hello's digest as hello-2.0-1.x86_64-signed.rpm signs it.
constexpr const char* kSignedDigest =
    "c89fa87aeb1143969c0b6be9334b21d932f77f74e8f60120b5de316406369cf0";

class InstalledHeader : public ::testing::Test {
 protected:
  void SetUp() override {
    DIGESTFS_REQUIRE(std::filesystem::is_directory(shared_rpm_data()), "../shared/data/rpm");
    root = work.path() / "root";
    keys = shared_rpm_data() / "keys";
  }

  void install(const std::string& options) {
    ASSERT_TRUE(rpm_in_root(root, "-i --nodeps --noscripts --nosignature " + options,
                            {shared_rpm_data() / "packages/hello-2.0-1.x86_64-signed.rpm"}));
  }

  // Whether rpm itself, reading the database, prints `expected` for the query format.
  bool rpm_says(const std::string& format, const std::string& expected) {
    return run_shell("rpm -qa --root " + root.string() + " --dbpath /var/lib/rpm --qf '" + format +
                     "' | grep -qx '" + expected + "'") == 0;
  }

  TempDir work;
  std::filesystem::path root, keys;
};

TEST_F(InstalledHeader, WhatIsPutOutsideTheSignedRegionIsNotTrusted) {
  install("");
  const std::string evil = "#!/bin/sh\necho evil\n";
  const std::string evil_hex = sha256_hex(evil);
  ASSERT_TRUE(with_installed_header(root, "hello", [&](Header h) {
    claim_content_for_hello(h, evil_hex, static_cast<uint32_t>(evil.size()));
    headerDel(h, RPMTAG_NAME);
    headerPutString(h, RPMTAG_NAME, "evil");
    return true;
  }));
  // librpm reads the rewritten tags: that is what trusting the whole header would trust.
  ASSERT_TRUE(rpm_says("[%{FILEDIGESTS}\\n]", evil_hex));
  ASSERT_TRUE(rpm_says("%{NAME}\\n", "evil"));

  auto index = load_root(keys, root);
  ASSERT_TRUE(index) << index.error().message;
  ASSERT_EQ((*index)->packages().size(), 1u) << "the signature still verifies";
  EXPECT_EQ((*index)->packages()[0].nevra, "hello-2.0-1.x86_64");
  auto entries = (*index)->lookup("/usr/bin/hello");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(to_hex(entries[0].digest().bytes), kSignedDigest);
  EXPECT_EQ(entries[0].size(), 7120u) << "the signed size";
}

TEST_F(InstalledHeader, FilesLeftOutAtInstallAreLeftOutOfTheIndex) {
  install("--excludedocs");
  auto index = load_root(keys, root);
  ASSERT_TRUE(index) << index.error().message;
  EXPECT_TRUE((*index)->contains("/usr/bin/hello"));
  EXPECT_FALSE((*index)->contains("/usr/share/doc/hello-2.0/FAQ"));
}

TEST_F(InstalledHeader, FileStatesThatDoNotMatchTheSignedListAreAnError) {
  install("");
  rpm::HeaderPtr installed;
  ASSERT_TRUE(with_installed_header(root, "hello", [&](Header h) {
    installed.reset(headerLink(h));
    return false;
  }));
  rpm::HeaderPtr region = signed_region(installed.get());
  ASSERT_TRUE(region);
  const std::vector<int8_t> states = install_states(installed.get());
  ASSERT_EQ(states.size(), 5u);
  EXPECT_TRUE(read_header_files(region.get(), states));
  const std::vector<int8_t> short_list(states.begin(), states.begin() + 2);
  auto files = read_header_files(region.get(), short_list);
  ASSERT_FALSE(files);
  EXPECT_EQ(files.error().message,
            "the database records 2 file states for the 5 files the signed header lists");
}

TEST(SignedFileList, OneThatIsNotReadIsAnErrorAndNoFilesAreNone) {
  rpm::HeaderPtr h(headerNew());
  const char* names[] = {"a", "b"};
  const char* dirs[] = {"/x/"};
  const uint32_t one_index[] = {0};
  headerPutStringArray(h.get(), RPMTAG_BASENAMES, names, 2);
  headerPutStringArray(h.get(), RPMTAG_DIRNAMES, dirs, 1);
  headerPutUint32(h.get(), RPMTAG_DIRINDEXES, one_index, 1);  // two names, one index
  auto files = read_header_files(h.get(), {});
  ASSERT_FALSE(files);
  EXPECT_EQ(files.error().message, "librpm cannot read the signed file list: its tags disagree");

  rpm::HeaderPtr old_form(headerNew());
  const char* paths[] = {"/x/a"};
  headerPutStringArray(old_form.get(), RPMTAG_OLDFILENAMES, paths, 1);
  auto old_files = read_header_files(old_form.get(), {});
  ASSERT_FALSE(old_files);
  EXPECT_NE(old_files.error().message.find("rpm before 4.0"), std::string::npos);

  rpm::HeaderPtr empty(headerNew());
  auto none = read_header_files(empty.get(), {});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->files.empty());
}

}  // namespace
}  // namespace digestfs::test
