#include "tests/support/rpm_root.hpp"

#include "tests/support/files.hpp"
#include "tests/support/test_env.hpp"

namespace digestfs::test {

::testing::AssertionResult rpm_in_root(const std::filesystem::path& root, const std::string& args,
                                       const std::vector<std::filesystem::path>& files) {
  TempDir scratch;
  const auto said = scratch.path() / "rpm.err";
  std::string cmd = "rpm --root " + root.string() + " --dbpath /var/lib/rpm " + args;
  for (const auto& f : files) cmd += " " + f.string();
  if (run_shell(cmd + " >/dev/null 2>" + said.string()) == 0) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << cmd << ": " << slurp(said);
}

}  // namespace digestfs::test
