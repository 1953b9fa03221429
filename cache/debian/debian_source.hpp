// The Debian source: the packages dpkg says are installed on a root, each trusted only
// through the archive's signed chain (InRelease -> Packages -> .deb), their files indexed
// with SHA-256 digests computed from each .deb's data member.
#pragma once

#include <filesystem>
#include <vector>

#include "cache/digest_index.hpp"
#include "cache/trust_store.hpp"
#include "src/base/result.hpp"

namespace digestfs {

struct DebianSourceOptions {
  std::filesystem::path lists;  // apt's lists directory; empty: no Debian source
  // Directories of .deb files (empty: the root's /var/cache/apt/archives).
  std::vector<std::filesystem::path> debs;
  std::filesystem::path status;  // dpkg's status file (empty: the root's)
  // The sealed cache of file lists derived from .debs (empty: none), and its key.
  std::filesystem::path cache;
  std::filesystem::path cache_key = "/etc/digestfs/deb-cache.key";
  std::string tpm;  // a TCTI: the cache key is sealed by that TPM (the mount's tpm= setting)

  bool enabled() const { return !lists.empty(); }
};

// What a Debian load did beyond the index.
struct DebianLoadStats {
  size_t debs_read = 0;
  // Why the sealed cache was set aside ("set aside: ...") or not written ("not written: ...").
  std::string cache_problem;
};

// Adds every installed package the chain vouches for to `builder`, and every one it does
// not to its rejected list with the reason. Fails only when the source as a whole is
// unusable (no status file, no usable key, an unreadable lists directory).
Result<DebianLoadStats> add_debian_packages(const TrustStore& trust,
                                            const std::filesystem::path& root,
                                            const DebianSourceOptions& options, unsigned jobs,
                                            DigestIndex::Builder& builder);

}  // namespace digestfs
