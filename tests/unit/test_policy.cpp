// The unknown-file policy's globs: matched over the whole index path, '/' literally, the first
// matching exception wins, the default otherwise.
#include <gtest/gtest.h>

#include "src/config/policy.hpp"

namespace digestfs::test {
namespace {

TEST(Policy, TheFirstMatchingExceptionWins) {
  Policy p;
  p.unknown = UnknownPolicy::Deny;
  p.unknown_exceptions = {{"/usr/local/*", UnknownPolicy::Allow},
                          {"/usr/local/bin/*", UnknownPolicy::Audit},
                          {"/var/lib/*/cache", UnknownPolicy::Audit}};
  EXPECT_EQ(p.unknown_policy_for("/usr/local/x"), UnknownPolicy::Allow);
  EXPECT_EQ(p.unknown_policy_for("/usr/local/bin/x"), UnknownPolicy::Audit)
      << "'*' does not cross '/': only the second exception matches";
  EXPECT_EQ(p.unknown_policy_for("/var/lib/app/cache"), UnknownPolicy::Audit);
  EXPECT_EQ(p.unknown_policy_for("/var/lib/a/b/cache"), UnknownPolicy::Deny);
  EXPECT_EQ(p.unknown_policy_for("/usr/bin/x"), UnknownPolicy::Deny) << "the default";
  p.unknown_exceptions.insert(p.unknown_exceptions.begin(), {"/usr/*/bin/x", UnknownPolicy::Allow});
  EXPECT_EQ(p.unknown_policy_for("/usr/local/bin/x"), UnknownPolicy::Allow);
}

TEST(Policy, NamesParseBackToTheirValues) {
  for (auto m : {Mode::Enforce, Mode::Audit, Mode::Permissive}) {
    EXPECT_EQ(*parse_mode(to_string(m)), m);
  }
  for (auto u : {UnknownPolicy::Deny, UnknownPolicy::Audit, UnknownPolicy::Allow}) {
    EXPECT_EQ(*parse_unknown(to_string(u)), u);
  }
  for (auto c : {ConfigPolicy::Verify, ConfigPolicy::Audit, ConfigPolicy::Skip}) {
    EXPECT_EQ(*parse_config(to_string(c)), c);
  }
  auto bad = parse_mode("strict");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "mode: 'strict' is not one of enforce|audit|permissive");
}

}  // namespace
}  // namespace digestfs::test
