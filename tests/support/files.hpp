// Files as tests see them: whole contents read and written (every write checked), a read
// through a mount with the errno it met, their pages taken out of the page cache, and the fds
// a process holds.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <filesystem>
#include <string>

namespace digestfs::test {

// The whole file, or "" when it cannot be read.
std::string slurp(const std::filesystem::path& p);
// Replaces (or creates) the file with `text`; fails with the errno of what went wrong.
::testing::AssertionResult write_text(const std::filesystem::path& p, const std::string& text);
::testing::AssertionResult append_text(const std::filesystem::path& p, const std::string& text);

// Reads a file (through a mount): its bytes, or the errno of open or read.
struct ReadResult {
  int error = 0;
  std::string bytes;
};
ReadResult read_file(const std::filesystem::path& p);

// Takes the file's pages out of the page cache (written back first); fails unless none is
// left (on tmpfs, say, whose pages are the file).
::testing::AssertionResult drop_from_page_cache(const std::filesystem::path& p);

// How many fds a process (this one by default) has open.
size_t open_fds(pid_t pid = 0);
// How many of them show `target` ("PATH", or "PATH (deleted)" once it is removed).
size_t open_fds_of(pid_t pid, const std::string& target);

}  // namespace digestfs::test
