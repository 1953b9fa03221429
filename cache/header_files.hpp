// Reads the file list of an accepted header through librpm's rpmfiles API.
#pragma once

#include <vector>

#include "cache/digest_index.hpp"
#include "cache/rpm_handles.hpp"
#include "src/base/result.hpp"

namespace digestfs {

struct HeaderFiles {
  uint8_t digest_algo = 0;
  bool has_regular_files = false;
  rpm::FilesPtr source;             // librpm's reading of the header: what files points into
  std::vector<PackagedFile> files;  // valid while source lives
};

// What rpm recorded about each file at install time (installed, replaced, not installed,
// netshared), from the header as the database holds it: kept outside the signed region, a
// state can only leave a file out of the index or mark it replaced. Empty for a header read
// from a .rpm file.
std::vector<int8_t> install_states(Header installed);

// Everything about the files comes from signed_region (see cache/signed_region.hpp), their
// states from install_states. Files that rpm left uninstalled on purpose (--excludedocs,
// netshared paths) are left out: they are not on disk, and rpm -V does not check them either.
// Fails when there are states but not one for each signed file.
Result<HeaderFiles> read_header_files(Header signed_region, const std::vector<int8_t>& states);

}  // namespace digestfs
