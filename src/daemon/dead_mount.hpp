// A digestfs that was killed leaves its mount point answering ENOTCONN; over its own source
// (digestfs /usr /usr) that also hides the source. A new digestfs on that mount point, as
// systemd's Restart= starts, detaches such a dead mount of ours before it opens the source.
#pragma once

#include <string>

#include "src/base/result.hpp"

namespace digestfs {

// True when a dead digestfs mount was detached from `mountpoint`, false when the mount point
// is alive; an error when it is dead and not ours (nothing is touched then).
Result<bool> detach_dead_mount(const std::string& mountpoint);

}  // namespace digestfs
