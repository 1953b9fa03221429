// The state of a running mount, as one JSON document and as text for people: what the status
// attributes on the mount root return and `digestfs-cache status MOUNTPOINT` prints.
#pragma once

#include <string>

#include "src/event_log.hpp"
#include "src/index_reloader.hpp"
#include "src/integrity_checker.hpp"
#include "src/measurement_log.hpp"
#include "src/primer.hpp"
#include "src/tpm_extender.hpp"

namespace digestfs {

// Extended attributes on the mount root, answered by the daemon itself.
inline constexpr const char* kStatusXattr = "user.digestfs.status";  // JSON
inline constexpr const char* kStatusTextXattr = "user.digestfs.status.text";
inline constexpr const char* kReloadXattr = "user.digestfs.reload";  // set: reload now

// What the status is made of; any pointer may be null (that part is not running).
struct StatusSources {
  const IntegrityChecker* checker = nullptr;
  const EventLog* log = nullptr;
  const IndexReloader* reloader = nullptr;
  const Primer* primer = nullptr;
  const MeasurementLog* measurements = nullptr;
  const TpmExtender* tpm = nullptr;
};

std::string status_json(const StatusSources& s);
std::string status_text(const StatusSources& s);

}  // namespace digestfs
