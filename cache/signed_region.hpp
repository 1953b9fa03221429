// The part of a package header that its signature covers. An installed header also carries
// tags added outside that region (the file states, the signature itself), and when librpm
// imports a header such a tag overrides a signed tag of the same number: a database writer
// could replace file digests under a signature that still verifies. So whatever is trusted
// is read from the region alone, as a header of its own.
#pragma once

#include "cache/rpm_handles.hpp"

namespace digestfs {

// The immutable region of header, imported on its own; null when the header has none (a
// legacy header, of which nothing is signed) or librpm cannot import it.
rpm::HeaderPtr signed_region(Header header);

}  // namespace digestfs
