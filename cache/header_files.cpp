#include "cache/header_files.hpp"

#include <rpm/rpmtd.h>
#include <sys/stat.h>

#include <algorithm>

namespace digestfs {
namespace {

// What rpm -V looks at, and no more: classes, dependencies, languages, inodes (and the hard
// link sets librpm builds from them), colors and signatures cost time to read and go unused.
constexpr rpmfiFlags kUnusedFileTags =
    RPMFI_NOFILECLASS | RPMFI_NOFILEDEPS | RPMFI_NOFILELANGS | RPMFI_NOFILEINODES |
    RPMFI_NOFILESTATES | RPMFI_NOFILECOLORS | RPMFI_NOFILESIGNATURES | RPMFI_NOVERITYSIGNATURES;

std::string_view text(const char* s) { return s ? std::string_view(s) : std::string_view(); }

PackagedFile packaged_file(rpmfiles fi, int i, int8_t state) {
  PackagedFile f;
  f.dir = text(rpmfilesDN(fi, rpmfilesDI(fi, i)));
  f.name = text(rpmfilesBN(fi, i));
  f.mode = static_cast<uint16_t>(rpmfilesFMode(fi, i));
  if (S_ISREG(f.mode)) {
    size_t len = 0;
    int algo = 0;
    const unsigned char* d = rpmfilesFDigest(fi, i, &algo, &len);
    // librpm hands back zeros for an empty digest (%ghost files): that is no digest.
    if (d && std::any_of(d, d + len, [](unsigned char c) { return c != 0; })) {
      f.digest = std::string_view(reinterpret_cast<const char*>(d), len);
    }
  }
  f.user = text(rpmfilesFUser(fi, i));
  f.group = text(rpmfilesFGroup(fi, i));
  f.linkto = text(rpmfilesFLink(fi, i));
  f.caps = text(rpmfilesFCaps(fi, i));
  f.size = rpmfilesFSize(fi, i);
  f.mtime = rpmfilesFMtime(fi, i);
  f.rdev = rpmfilesFRdev(fi, i);
  f.attrs = static_cast<uint16_t>(rpmfilesFFlags(fi, i));
  f.verify_flags = static_cast<uint16_t>(rpmfilesVFlags(fi, i));
  f.state = state;
  return f;
}

}  // namespace

std::vector<int8_t> install_states(Header installed) {
  std::vector<int8_t> states;
  struct rpmtd_s td;
  if (!headerGet(installed, RPMTAG_FILESTATES, &td, HEADERGET_MINMEM)) return states;
  if (rpmtdType(&td) == RPM_CHAR_TYPE) {
    const auto* data = static_cast<const int8_t*>(td.data);
    states.assign(data, data + rpmtdCount(&td));
  }
  rpmtdFreeData(&td);
  return states;
}

Result<HeaderFiles> read_header_files(Header signed_region, const std::vector<int8_t>& states) {
  HeaderFiles out;
  // rpm before 4.0 listed whole paths, and rpmfiles reads only the compressed form: such a list
  // would read as no files at all. No package of the last two decades has it; it is refused
  // by name.
  if (headerIsEntry(signed_region, RPMTAG_OLDFILENAMES)) {
    return Error{EINVAL,
                 "the signed file list is in the form of rpm before 4.0, which is not read"};
  }
  out.source.reset(rpmfilesNew(nullptr, signed_region, RPMTAG_BASENAMES, kUnusedFileTags));
  rpmfiles fi = out.source.get();
  // A header without files reads as an empty list; none at all means tags that disagree.
  if (!fi) return Error{EINVAL, "librpm cannot read the signed file list: its tags disagree"};
  out.digest_algo = static_cast<uint8_t>(rpmfilesDigestAlgo(fi));
  const int count = static_cast<int>(rpmfilesFC(fi));
  if (!states.empty() && states.size() != static_cast<size_t>(count)) {
    return Error{EINVAL, "the database records " + std::to_string(states.size()) +
                             " file states for the " + std::to_string(count) +
                             " files the signed header lists"};
  }
  out.files.reserve(count);
  for (int i = 0; i < count; ++i) {
    const int8_t state = states.empty() ? int8_t{RPMFILE_STATE_MISSING} : states[i];
    if (state == RPMFILE_STATE_NOTINSTALLED || state == RPMFILE_STATE_NETSHARED) continue;
    out.files.push_back(packaged_file(fi, i, state));
    out.has_regular_files |= S_ISREG(out.files.back().mode);
  }
  return out;
}

}  // namespace digestfs
