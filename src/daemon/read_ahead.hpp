// How far the kernel reads ahead of a reader of the mount. Its default for a FUSE mount is
// 128 KiB: one request in flight at a time, so a sequential read waits for every round trip,
// and with block checks for each request's hashing too. Set through the mount's backing
// device in sysfs (root only).
#pragma once

#include <string>

#include "src/base/result.hpp"

namespace digestfs {

// Sets the read-ahead of the filesystem `device` ("MAJOR:MINOR") to `kib`.
Result<void> set_read_ahead(const std::string& device, unsigned kib);

}  // namespace digestfs
