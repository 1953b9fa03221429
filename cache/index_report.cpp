#include "cache/index_report.hpp"

#include <rpm/rpmfiles.h>

namespace digestfs {

void rejected_json(JsonWriter& j, const RejectedHeader& r, bool with_origin) {
  j.begin_object().key("nevra").value(r.nevra).key("verdict").value(verdict_name(r.verdict));
  if (with_origin) j.key("origin").value(r.origin);
  j.key("reason").value(r.reason).end_object();
}

std::string attr_markers(uint16_t attrs) {
  std::string out;
  if (attrs & RPMFILE_CONFIG) out += 'c';
  if (attrs & RPMFILE_DOC) out += 'd';
  if (attrs & RPMFILE_GHOST) out += 'g';
  if (attrs & RPMFILE_LICENSE) out += 'l';
  if (attrs & RPMFILE_MISSINGOK) out += 'm';
  if (attrs & RPMFILE_NOREPLACE) out += 'n';
  if (attrs & RPMFILE_README) out += 'r';
  return out;
}

}  // namespace digestfs
