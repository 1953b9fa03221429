// Reads the file list of an accepted header through librpm's rpmfiles API.
#pragma once

#include <vector>

#include "cache/digest_index.hpp"
#include "cache/rpm_handles.hpp"

namespace digestfs {

struct HeaderFiles {
  uint8_t digest_algo = 0;
  bool has_regular_files = false;
  std::vector<PackagedFile> files;
};

// Files that rpm left uninstalled on purpose (--excludedocs, netshared paths) are left out:
// they are not on disk, and rpm -V does not check them either.
HeaderFiles read_header_files(Header header);

}  // namespace digestfs
