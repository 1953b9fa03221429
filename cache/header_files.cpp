#include "cache/header_files.hpp"

#include <sys/stat.h>

#include <algorithm>

namespace digestfs {

HeaderFiles read_header_files(Header header) {
  HeaderFiles out;
  rpm::FilesPtr fi(rpmfilesNew(nullptr, header, RPMTAG_BASENAMES, RPMFI_NOHEADER));
  if (!fi) return out;
  out.digest_algo = static_cast<uint8_t>(rpmfilesDigestAlgo(fi.get()));
  const int count = static_cast<int>(rpmfilesFC(fi.get()));
  out.files.reserve(count);
  for (int i = 0; i < count; ++i) {
    rpmfileState state = rpmfilesFState(fi.get(), i);
    if (state == RPMFILE_STATE_NOTINSTALLED || state == RPMFILE_STATE_NETSHARED) continue;
    PackagedFile f;
    rpm::Malloced<char> path(rpmfilesFN(fi.get(), i));
    f.path = path.get();
    f.mode = static_cast<uint16_t>(rpmfilesFMode(fi.get(), i));
    if (S_ISREG(f.mode)) {
      out.has_regular_files = true;
      size_t len = 0;
      int algo = 0;
      const unsigned char* d = rpmfilesFDigest(fi.get(), i, &algo, &len);
      // librpm hands back zeros for an empty digest (%ghost files): that is no digest.
      if (d && std::any_of(d, d + len, [](unsigned char c) { return c != 0; })) {
        f.digest.assign(reinterpret_cast<const char*>(d), len);
      }
    }
    auto text = [](const char* s) { return s ? std::string(s) : std::string(); };
    f.user = text(rpmfilesFUser(fi.get(), i));
    f.group = text(rpmfilesFGroup(fi.get(), i));
    f.linkto = text(rpmfilesFLink(fi.get(), i));
    f.caps = text(rpmfilesFCaps(fi.get(), i));
    f.size = rpmfilesFSize(fi.get(), i);
    f.mtime = rpmfilesFMtime(fi.get(), i);
    f.rdev = rpmfilesFRdev(fi.get(), i);
    f.attrs = static_cast<uint16_t>(rpmfilesFFlags(fi.get(), i));
    f.verify_flags = static_cast<uint16_t>(rpmfilesVFlags(fi.get(), i));
    f.state = static_cast<int8_t>(state);
    out.files.push_back(std::move(f));
  }
  return out;
}

}  // namespace digestfs
