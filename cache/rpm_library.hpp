// Process-wide librpm state: configuration read once, and librpm's log routed to the
// calling thread so that a failure can be reported with librpm's own words.
#pragma once

#include <filesystem>
#include <mutex>
#include <string>

#include "cache/rpm_handles.hpp"

namespace digestfs::rpm {

// Reads rpm's configuration the first time it is called; safe to call from any thread.
void ensure_initialized();

// What librpm logged on this thread since the last call (warnings and errors) as one line,
// then forgets it.
std::string take_thread_log();

// A transaction set for reading, with the given keyring and signature-checking flags.
TsPtr make_ts(rpmKeyring keyring, rpmVSFlags vsflags);

// librpm keeps macros in one global table: %_dbpath is set for the duration of an open.
class ScopedDbPath {
 public:
  explicit ScopedDbPath(const std::filesystem::path& dbpath);
  ~ScopedDbPath();
  ScopedDbPath(const ScopedDbPath&) = delete;
  ScopedDbPath& operator=(const ScopedDbPath&) = delete;

 private:
  std::lock_guard<std::mutex> lock_;
};

}  // namespace digestfs::rpm
