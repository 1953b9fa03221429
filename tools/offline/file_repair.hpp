// Repairs regular files of a root from signed .rpm packages: each package's header signature
// is checked against the trust store (through the same loader as the index), its payload is
// read through librpm's archive reader, every file's bytes are checked against the trusted
// index digest, and only then put in place atomically (temporary file in the same directory,
// fsync, rename) with the packaged mode, owner and mtime.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "cache/digest_index.hpp"
#include "cache/trust_store.hpp"
#include "src/base/result.hpp"
#include "tools/offline/root_accounts.hpp"

namespace digestfs {

struct RepairOutcome {
  std::map<uint32_t, std::string> failed;  // index record -> why it could not be repaired
  std::vector<uint32_t> repaired;
};

// records: entries of `index` (regular files) to restore. sources: .rpm files or directories.
Result<RepairOutcome> repair_files(const DigestIndex& index, const std::vector<uint32_t>& records,
                                   const TrustStore& trust,
                                   const std::vector<std::filesystem::path>& sources, int root_fd,
                                   const RootAccounts& accounts);

}  // namespace digestfs
