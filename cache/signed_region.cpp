#include "cache/signed_region.hpp"

#include <rpm/rpmtd.h>

namespace digestfs {

rpm::HeaderPtr signed_region(Header header) {
  struct rpmtd_s td;
  if (!headerGet(header, RPMTAG_HEADERIMMUTABLE, &td, HEADERGET_DEFAULT)) return nullptr;
  // librpm hands the region over as a fresh on-disk blob: the import takes it over, or leaves
  // it to be freed here when it fails.
  const bool owned = td.flags & RPMTD_ALLOCED;
  const headerImportFlags copy = owned ? 0 : HEADERIMPORT_COPY;
  Header region = headerImport(td.data, td.count, copy);
  if (!region || !owned) rpmtdFreeData(&td);
  return rpm::HeaderPtr(region);
}

}  // namespace digestfs
