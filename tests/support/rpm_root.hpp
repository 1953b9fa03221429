// rpm run on a test root, the one way every test installs, upgrades, erases or queries.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

namespace digestfs::test {

// `rpm --root ROOT --dbpath /var/lib/rpm ARGS FILES...` (Debian's rpm would use ~/.rpmdb);
// succeeds when rpm exits 0, else fails with the command line and what rpm said.
::testing::AssertionResult rpm_in_root(const std::filesystem::path& root, const std::string& args,
                                       const std::vector<std::filesystem::path>& files = {});

// The packages' files put in place the way the tests want them: no scripts, no dependencies,
// and no signature check by rpm itself (judging signatures is what digestfs is tested for).
inline ::testing::AssertionResult install_into_root(
    const std::filesystem::path& root, const std::vector<std::filesystem::path>& files) {
  return rpm_in_root(root, "-i --nodeps --noscripts --nosignature --replacefiles", files);
}

}  // namespace digestfs::test
