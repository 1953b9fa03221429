// Loads the trusted DigestIndex from the configured sources: the rpm database of a root and
// directories or lists of .rpm files, and the Debian source (installed .debs). Every header is
// judged by HeaderVerifier; rejected ones are kept in the index's rejected() list with their
// reason, and never hide the others.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "cache/debian/debian_source.hpp"
#include "cache/digest_index.hpp"
#include "cache/trust_store.hpp"
#include "src/base/result.hpp"

namespace digestfs {

struct SourceOptions {
  bool read_rpmdb = true;
  std::filesystem::path root = "/";
  // As rpm means it: relative to root. Debian's rpm defaults %_dbpath to ~/.rpmdb, so the
  // distribution layout is spelled out here rather than taken from rpm's macros.
  std::filesystem::path dbpath = "/var/lib/rpm";
  std::vector<std::filesystem::path> packages;  // directories of .rpm files, or .rpm files
  DebianSourceOptions debian;                   // installed .debs vouched for by apt's signed lists
  bool allow_weak_digests = false;
  unsigned jobs = 0;  // 0: every core
};

// Fails only when a source as a whole is unusable (no database, unreadable directory).
// With `previous` (a snapshot made with the same trust store and options), database headers
// it accepted unchanged are taken from it instead of being verified and read again.
Result<std::shared_ptr<const DigestIndex>> load_digest_index(
    const TrustStore& trust, const SourceOptions& options, uint64_t generation = 1,
    std::shared_ptr<const DigestIndex> previous = nullptr);

}  // namespace digestfs
