// ArchiveIndices: what the signed chain of apt's lists directory vouches for. Each InRelease
// (or Release with Release.gpg) must carry a good signature by a key of the trust store; each
// Packages index beside it must have the SHA-256 that signed text lists for it; each stanza
// of such an index then names a .deb by its SHA-256. Nothing else of the lists is believed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "cache/debian/archive_signature.hpp"
#include "cache/header_verdict.hpp"

namespace digestfs {

// One .deb as a verified Packages stanza describes it.
struct DebStanza {
  std::string sha256;  // lowercase hex
  uint64_t size = 0;
  std::string filename;  // the pool path, e.g. pool/main/b/bash/bash_5.2.15-2+b7_amd64.deb
  std::string signer;    // fingerprint of the key that signed the Release listing its index
};

struct ListProblem {
  std::filesystem::path file;
  HeaderVerdict verdict;  // what a package of that file would have been rejected as
  std::string reason;
};

struct ArchiveIndices {
  // "package version architecture" -> every verified stanza of that name (most often one).
  std::map<std::string, std::vector<DebStanza>> stanzas;
  std::vector<std::filesystem::path> verified_indices;
  std::vector<ListProblem> problems;  // rejected Release files and indices, with the reason
};

std::string stanza_key(std::string_view package, std::string_view version,
                       std::string_view architecture);

// Fails only when the directory cannot be read at all.
Result<ArchiveIndices> read_archive_indices(const std::filesystem::path& lists,
                                            const ArchiveSignatures& signatures);

}  // namespace digestfs
