// The state of a running mount, as one JSON document: what the status xattr on the mount
// root returns and `digestfs-cache status MOUNTPOINT` prints.
#pragma once

#include <string>

#include "src/event_log.hpp"
#include "src/integrity_checker.hpp"

namespace digestfs {

// The extended attribute on the mount root that holds the status document.
inline constexpr const char* kStatusXattr = "user.digestfs.status";

// checker is null when verification is off.
std::string status_json(const IntegrityChecker* checker, const EventLog& log);

}  // namespace digestfs
