// The files of one .deb, read with libarchive (the ar archive, then its control and data tar
// members, compressed however they are). The .deb's SHA-256 is computed from the very bytes
// libarchive parsed, in the same pass, so a file swapped while it is read cannot pass for the
// one whose hash a signed stanza gives.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "src/base/digest.hpp"
#include "src/base/result.hpp"

namespace digestfs {

struct DebFile {
  std::string path;    // absolute, no trailing slash: "/usr/bin/bash"
  std::string digest;  // binary SHA-256 of a regular file's content; empty otherwise
  std::string user, group, linkto;
  uint64_t size = 0;
  uint32_t mtime = 0;
  uint16_t mode = 0;
  bool conffile = false;  // listed in the control member's conffiles
};

struct DebContents {
  Sha256 sha256{};  // of the whole .deb as read
  uint64_t size = 0;
  std::vector<DebFile> files;
};

Result<DebContents> read_deb(const std::filesystem::path& deb);

}  // namespace digestfs
