// IndexReloader: rebuilds the digest index when the rpm database (or a package directory)
// changes, on SIGHUP, and on request, in its own thread. A new snapshot replaces the old one
// only when it loaded; a database that cannot be read keeps the last good snapshot and is
// logged. Remembered content digests survive a reload: unchanged files are not hashed again.
#pragma once

#include <sys/inotify.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "src/base/unique_fd.hpp"
#include "src/config/settings.hpp"
#include "src/config/trusted_index.hpp"
#include "src/daemon/event_log.hpp"
#include "src/daemon/integrity_checker.hpp"

namespace digestfs {

struct ReloadStats {
  uint64_t reloads = 0;
  uint64_t failures = 0;
  double last_seconds = 0;
  std::string last_error;  // of the last failed reload, kept until one succeeds
};

class IndexReloader {
 public:
  // `loaded` is what the checker serves now; reloads reuse its unchanged packages.
  IndexReloader(Settings settings, TrustedIndex loaded, IntegrityChecker& checker, EventLog& log);
  ~IndexReloader();
  IndexReloader(const IndexReloader&) = delete;
  IndexReloader& operator=(const IndexReloader&) = delete;

  // Starts watching the sources and serving requests.
  Result<void> start();
  // Asks for a reload; async-signal-safe (a write to an eventfd).
  void request();
  ReloadStats stats() const;

 private:
  void run();
  void reload();
  int watch(const std::filesystem::path& dir, uint32_t mask);
  void watch_database();
  // Whether one event says the packages may have changed; follows the database directory
  // when it is moved, deleted or brought back.
  bool relevant(const inotify_event* ev);

  Settings settings_;
  TrustedIndex current_;  // touched by the reloader thread only, after start()
  IntegrityChecker& checker_;
  EventLog& log_;
  UniqueFd inotify_;
  // The database directory is watched by path: restored from a backup, it is a new directory,
  // so its parent is watched for its name coming back.
  std::filesystem::path database_;
  int database_wd_ = -1;
  int database_parent_wd_ = -1;
  UniqueFd wake_;  // eventfd: reload requests
  UniqueFd stop_;  // eventfd: shutdown
  std::thread thread_;
  mutable std::mutex stats_mutex_;
  ReloadStats stats_;
};

}  // namespace digestfs
