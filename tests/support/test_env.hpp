// Where the tests find their inputs, and how a missing input is treated: a skip on a
// developer's machine, a failure under CI=true (nothing may be skipped there).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace digestfs::test {

std::filesystem::path source_root();
// ../shared/data/rpm relative to the project root (see its SOURCES.md).
std::filesystem::path shared_rpm_data();
bool running_in_ci();
// SHA-256 of bytes, in hex: what rpm records as a file digest.
std::string sha256_hex(const std::string& bytes);
// Runs a shell command; returns its exit status (or -1).
int run_shell(const std::string& command);
// Runs a shell command with its output captured: the exit status and both streams.
struct CommandOutput {
  int status;
  std::string out, err;
};
CommandOutput run_captured(const std::string& command);
// Builds tests/fixtures/make-fixtures output once per process; empty path on failure.
const std::filesystem::path& built_fixtures();
// Builds tests/fixtures/make-debian-archive output once per process; empty path on failure.
const std::filesystem::path& built_debian_fixtures();
// A fresh directory under /tmp, removed by the caller's TempDir.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace digestfs::test

// Skips (or fails under CI=true) when a test input is missing.
#define DIGESTFS_REQUIRE(cond, what)                                        \
  do {                                                                      \
    if (!(cond)) {                                                          \
      if (::digestfs::test::running_in_ci()) FAIL() << "missing: " << what; \
      GTEST_SKIP() << "missing: " << what;                                  \
    }                                                                       \
  } while (0)
