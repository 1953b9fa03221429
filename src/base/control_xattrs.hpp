// The extended attributes a digestfs mount answers on its root itself (they never reach the
// lower tree): the one interface between a running mount and digestfs-cache.
#pragma once

namespace digestfs {

inline constexpr const char* kStatusXattr = "user.digestfs.status";  // JSON
inline constexpr const char* kStatusTextXattr = "user.digestfs.status.text";
inline constexpr const char* kReloadXattr = "user.digestfs.reload";  // set: reload now

}  // namespace digestfs
