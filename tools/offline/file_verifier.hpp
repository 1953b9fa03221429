// verify_entry: checks one indexed file in a root the way `rpm -V` does (size, mode, digest,
// device, link target, user, group, mtime, capabilities), against the trusted index entry
// rather than an unverified header. Paths resolve inside the root (openat2 RESOLVE_IN_ROOT),
// as they would in rpm's chroot. The result uses rpm's RPMVERIFY_* bits.
#pragma once

#include <cstdint>
#include <string>

#include "cache/digest_index.hpp"
#include "src/base/unique_fd.hpp"
#include "tools/offline/root_accounts.hpp"

namespace digestfs {

struct FileCheck {
  uint32_t result = 0;  // RPMVERIFY_* bits that differ, plus the *FAIL bits
  int lstat_errno = 0;  // why the file could not be looked at, when LSTATFAIL is set
  uint64_t bytes_hashed = 0;
};

// root_fd: the root directory. shared: another claim on the same path exists (rpm then
// ignores mtime differences).
// parent_fd: the entry's directory, opened inside the root (open_parent_in_root), so that the
// file itself is reached by one path component; -1 when it could not be opened.
FileCheck verify_entry(int root_fd, int parent_fd, const FileEntry& entry,
                       const RootAccounts& accounts, bool shared);

// The directory `dir` ("/usr/bin/") opened O_PATH inside the root.
UniqueFd open_dir_in_root(int root_fd, std::string_view dir);

// rpm's "SM5DLUGTP" column string for a result ('.' passed, '?' could not check).
std::string verify_columns(uint32_t result);
// The attribute marker rpm prints: d, c, s, m, n, g, l, r or a, else ' '.
char attribute_marker(uint16_t attrs);

}  // namespace digestfs
