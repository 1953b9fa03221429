// digestfs-cache as a user runs it: output lines, --json, and the documented exit codes.
#include <gtest/gtest.h>

#include "tests/support/test_env.hpp"

namespace digestfs::test {
namespace {

CommandOutput cache_tool(const std::string& args) {
  return run_captured(std::string(DIGESTFS_CACHE_BINARY) + " " + args);
}

class CacheTool : public ::testing::Test {
 protected:
  void SetUp() override {
    DIGESTFS_REQUIRE(std::filesystem::is_directory(shared_rpm_data()), "../shared/data/rpm");
    sources = "--keys " + (shared_rpm_data() / "keys").string() + " --packages " +
              (shared_rpm_data() / "packages").string();
  }
  std::string sources;
};

TEST_F(CacheTool, StatsListsAcceptedAndRejectedCounts) {
  CommandOutput r = cache_tool(sources + " stats");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("packages accepted: 5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("packages rejected: 3"), std::string::npos) << r.out;
  CommandOutput j = cache_tool(sources + " --json stats");
  EXPECT_EQ(j.status, 0);
  EXPECT_NE(j.out.find("\"packages_accepted\":5"), std::string::npos) << j.out;
}

TEST_F(CacheTool, LookupExitsOneForAPathWithoutEntry) {
  CommandOutput found = cache_tool(sources + " lookup /usr/bin/hello");
  EXPECT_EQ(found.status, 0);
  EXPECT_NE(
      found.out.find("sha256:c89fa87aeb1143969c0b6be9334b21d932f77f74e8f60120b5de316406369cf0"),
      std::string::npos);
  CommandOutput missing = cache_tool(sources + " lookup /usr/bin/nonexistent");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("/usr/bin/nonexistent: no entry"), std::string::npos) << missing.err;
}

TEST_F(CacheTool, RejectedNamesVerdictAndReason) {
  CommandOutput r = cache_tool(sources + " rejected");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("hello-2.0-1.x86_64 unsigned"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hello-2.0-1.x86_64 corrupted"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hello-2.0-1.x86_64 untrusted-key"), std::string::npos) << r.out;
}

TEST_F(CacheTool, ExportsTheIndexAsAKeylimeRuntimePolicy) {
  CommandOutput r = cache_tool(sources + " export --format keylime");
  EXPECT_EQ(r.status, 0) << r.err;
  // What Keylime's schema requires (keylime.ima.ima, checked with Keylime's own code: see
  // digestfs-cache(8)): generator an integer, above 1 or the verifier ignores the policy;
  // ima.dm_policy null; lower-case hex digests of 40 to 128 digits.
  EXPECT_EQ(r.out.find("{\"meta\":{\"version\":1,\"generator\":3},\"release\":0,\"digests\":{"), 0u)
      << r.out.substr(0, 200);
  EXPECT_NE(
      r.out.find("\"ima\":{\"ignored_keyrings\":[],\"log_hash_alg\":\"sha1\",\"dm_policy\":null}"),
      std::string::npos);
  EXPECT_NE(r.out.find("\"excludes\":[]"), std::string::npos);
  // The log's package entries are in it, by the digest the log carries.
  EXPECT_NE(r.out.find("\"rpm:hello-2.0-1.x86_64\":[\""), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("boot_aggregate"), std::string::npos) << "none given";
  const std::string aggregate(64, 'a');
  CommandOutput with =
      cache_tool(sources + " export --format keylime --boot-aggregate " + std::string(64, 'A'));
  EXPECT_NE(with.out.find("\"digests\":{\"boot_aggregate\":[\"" + aggregate + "\"]"),
            std::string::npos)
      << with.out.substr(0, 200);
  EXPECT_EQ(cache_tool(sources + " export --format keylime --boot-aggregate xyz").status, 2);
  EXPECT_NE(
      r.out.find("\"/usr/bin/"
                 "hello\":[\"c89fa87aeb1143969c0b6be9334b21d932f77f74e8f60120b5de316406369cf0\","
                 "\"c89fa87aeb1143969c0b6be9334b21d932f77f74e8f60120b5de316406369cf0\"]"),
      std::string::npos)
      << "both signed builds claim it";
  EXPECT_EQ(r.out.find("\"/usr/lib/.build-id\""), std::string::npos)
      << "directories have no digest";
  EXPECT_EQ(cache_tool(sources + " export").status, 2) << "the format is required";
}

TEST_F(CacheTool, UsageAndSourceErrorsHaveTheirExitCodes) {
  EXPECT_EQ(cache_tool(sources + " frobnicate").status, 2);
  EXPECT_EQ(cache_tool(sources + " --bogus stats").status, 2);
  EXPECT_EQ(cache_tool(sources + " lookup").status, 2);
  CommandOutput keys = cache_tool("--keys /nonexistent/keys --packages /tmp stats");
  EXPECT_EQ(keys.status, 3);
  EXPECT_NE(keys.err.find("/nonexistent/keys"), std::string::npos) << keys.err;
  CommandOutput db =
      cache_tool("--keys " + (shared_rpm_data() / "keys").string() + " --root /nonexistent stats");
  EXPECT_EQ(db.status, 3);
  EXPECT_NE(db.err.find("no rpm database"), std::string::npos) << db.err;
}

}  // namespace
}  // namespace digestfs::test
