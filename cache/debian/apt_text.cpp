#include "cache/debian/apt_text.hpp"

#include <apt-pkg/error.h>
#include <apt-pkg/fileutl.h>

#include <algorithm>

namespace digestfs {

std::string apt_errors() {
  std::string out;
  std::string message;
  while (!_error->empty()) {
    _error->PopMessage(message);
    if (!out.empty()) out += "; ";
    out += message;
  }
  return out.empty() ? "libapt-pkg gave no reason" : out;
}

Result<void> for_each_stanza(const std::string& text, const std::string& what,
                             const std::function<void(const pkgTagSection&)>& each) {
  // libapt-pkg's scanner over the text where it lies, stanza by stanza as pkgTagFile steps,
  // so that an index of a hundred megabytes is not copied again into a file and a buffer.
  pkgTagSection section;
  const char* at = text.data();
  const char* const end = at + text.size();
  while (at != end) {
    if (!section.Scan(at, static_cast<unsigned long>(end - at))) {
      // The last stanza may lack the blank line that ends the others (pkgTagFile takes it
      // all the same): scanned from a copy that has one. It must then be the whole rest,
      // so that nothing after a bad stanza goes unread.
      std::string last(at, end);
      last += "\n\n";
      if (!section.Scan(last.data(), last.size()) || section.size() < last.size() - 2)
        return Error{EBADMSG, what + ": unparsable stanza at byte " +
                                  std::to_string(at - text.data()) + ": " + apt_errors()};
      each(section);
      return {};
    }
    if (section.size() == 0) return Error{EBADMSG, what + ": empty stanza scanned"};
    each(section);
    at += section.size();
  }
  return {};
}

Result<std::string> read_apt_file(const std::string& path, size_t expected_size) {
  FileFd fd;
  if (!fd.Open(path, FileFd::ReadOnly, FileFd::Extension))
    return Error{ENOENT, path + ": " + apt_errors()};
  // Read straight into the result, sized for what the caller expects (an index's signed
  // size), so that a large index is neither bounced through a buffer nor moved as it grows.
  std::string out(std::clamp<size_t>(expected_size + 1, 1 << 16, size_t{1} << 30), '\0');
  size_t have = 0;
  for (;;) {
    if (have == out.size()) out.resize(out.size() * 2);
    unsigned long long got = 0;
    if (!fd.Read(out.data() + have, out.size() - have, &got))
      return Error{EIO, path + ": " + apt_errors()};
    if (got == 0) break;
    have += got;
  }
  out.resize(have);
  return out;
}

}  // namespace digestfs
