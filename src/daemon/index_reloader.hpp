// IndexReloader: rebuilds the digest index when the rpm database (or a package directory)
// changes, on SIGHUP, and on request, in its own thread. A new snapshot replaces the old one
// only when it loaded; a database that cannot be read keeps the last good snapshot and is
// logged. Remembered content digests survive a reload: unchanged files are not hashed again.
#pragma once

#include <sys/inotify.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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
  using Clock = std::chrono::steady_clock;
  // Asks for a reload; returns its ticket. Async-signal-safe (an atomic add and a write to
  // an eventfd).
  uint64_t request();
  // Waits until a reload that began after the ticket was handed out has ended (loaded or
  // failed); false when `deadline` came first.
  bool wait_for(uint64_t ticket, Clock::time_point deadline) const;
  // Before a refusal: when the sources differ from what the snapshot in force was read from
  // (a package installed a moment ago), asks for a reload and waits for it until `deadline`.
  CatchUp catch_up(Clock::time_point deadline);
  // The rpm database this mount trusts (empty: none is read).
  const std::filesystem::path& database() const { return database_; }
  ReloadStats stats() const;

 private:
  void run();
  // Loads a new snapshot from the sources, which looked like `sources` just before.
  void reload(const std::string& sources);
  int watch(const std::filesystem::path& dir, uint32_t mask);
  // Directories watched for sources that come, go or change: .rpm directories, apt's lists,
  // .deb directories.
  std::vector<std::filesystem::path> watched_dirs() const;
  std::vector<std::filesystem::path> deb_dirs() const;  // the Debian source's .deb directories
  void watch_database();
  // Whether one event says the packages may have changed; follows the database directory
  // when it is moved, deleted or brought back.
  bool relevant(const inotify_event* ev);
  // Whether the sources cannot have changed since the snapshot in force (or the last failed
  // reload) read them, known without a stat: every source directory is under a watch that
  // still holds, no event waits to be read, and every relevant change read has had its reload.
  bool quiet() const;
  uint64_t changes_seen() const;  // changes_read_, under its lock
  // What the sources look like to stat: the database directory's files and the package
  // files, with size, mtime and inode; what a reader of them changes itself is left out.
  std::string sources_fingerprint() const;

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
  std::filesystem::path dpkg_status_;  // the Debian source's status file, when it is given
  int dpkg_wd_ = -1;
  std::vector<int> dir_wds_;  // the source directories' watches, the database's aside
  // Guards what the watches have told (these, and database_wd_ once the thread runs): the
  // reloader reads and counts events under it.
  mutable std::mutex events_mutex_;
  bool watches_hold_ = false;    // every source directory is watched, none moved or removed
  uint64_t changes_read_ = 0;    // reads of the event queue that found a relevant change
  uint64_t changes_loaded_ = 0;  // ... of those, how many a finished reload had seen
  UniqueFd wake_;  // eventfd: reload requests
  UniqueFd stop_;  // eventfd: shutdown
  std::thread thread_;
  mutable std::mutex stats_mutex_;  // also guards finished_ and loaded_from_
  ReloadStats stats_;
  std::atomic<uint64_t> requested_{0};  // tickets handed out
  uint64_t finished_ = 0;               // every ticket up to this one has had its reload
  std::string loaded_from_;             // the sources' fingerprint when the snapshot was read
  std::string failed_from_;             // ... when the last failed reload read them
  mutable std::condition_variable finished_changed_;
};

}  // namespace digestfs
