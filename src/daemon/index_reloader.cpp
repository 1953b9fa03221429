#include "src/daemon/index_reloader.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "src/base/thread_name.hpp"

namespace digestfs {
namespace {

// Writes to a database come in bursts (sqlite's WAL, rpm's transaction): reload once the
// sources have been quiet this long, but never later than kMaxDelay after the first change.
constexpr int kQuietMs = 150;
constexpr auto kMaxDelay = std::chrono::milliseconds(1000);

constexpr uint32_t kWatchMask =
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_MODIFY;
// A watch follows its directory's inode: one moved away or removed no longer watches the path.
constexpr uint32_t kSelfMask = IN_DELETE_SELF | IN_MOVE_SELF;
constexpr uint32_t kDatabaseMask = kWatchMask | kSelfMask;
constexpr uint32_t kParentMask = IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE;

// What a reader does itself must not count as a change, or every reload would cause the next:
// sqlite's shared-memory index is written by readers, and its write-ahead log is opened for
// writing (and closed) by them; only a write into the log is a change. rpm's lock files say
// nothing about the packages.
bool reader_file(std::string_view name) {
  return name.ends_with("-shm") || name == ".rpm.lock" || name == ".dbenv.lock";
}

bool ignored(const inotify_event* ev) {
  if (ev->len == 0) return false;
  std::string_view name(ev->name);
  if (name.ends_with("-wal")) return !(ev->mask & IN_MODIFY);
  return reader_file(name);
}

// One file as a fingerprint sees it.
void add_stat(std::string& out, const std::filesystem::path& file) {
  struct stat st;
  if (lstat(file.c_str(), &st) != 0) {
    out += file.string() + "|-\n";
    return;
  }
  out += file.string() + "|" + std::to_string(st.st_ino) + "|" + std::to_string(st.st_size) + "|" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + "\n";
}

// A directory and every file in it, in name order.
void add_stat_of_entries(std::string& out, const std::filesystem::path& dir) {
  add_stat(out, dir);
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) add_stat(out, f);
}

void drain(int fd) {
  uint64_t value;
  while (read(fd, &value, sizeof value) > 0) {
  }
}

}  // namespace

IndexReloader::IndexReloader(Settings settings, TrustedIndex loaded, IntegrityChecker& checker,
                             EventLog& log)
    : settings_(std::move(settings)), current_(std::move(loaded)), checker_(checker), log_(log) {
  if (settings_.sources.read_rpmdb) {
    database_ = settings_.sources.root / settings_.sources.dbpath.relative_path();
    if (!database_.has_filename()) database_ = database_.parent_path();
  }
  if (const auto& debian = settings_.sources.debian; debian.enabled()) {
    dpkg_status_ =
        debian.status.empty() ? settings_.sources.root / "var/lib/dpkg/status" : debian.status;
  }
  // The first snapshot was read a moment ago: what the sources look like now stands for it.
  loaded_from_ = sources_fingerprint();
}

std::string IndexReloader::sources_fingerprint() const {
  std::string out;
  std::error_code ec;
  if (!database_.empty()) {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(database_, ec)) {
      if (!reader_file(e.path().filename().string())) files.push_back(e.path());
    }
    if (ec) out += "database unreadable: " + ec.message() + "\n";
    std::sort(files.begin(), files.end());
    for (const auto& f : files) add_stat(out, f);
  }
  for (const auto& p : settings_.sources.packages) add_stat_of_entries(out, p);
  if (const auto& debian = settings_.sources.debian; debian.enabled()) {
    add_stat(out, dpkg_status_);
    add_stat(out, dpkg_status_.parent_path() / "diversions");
    add_stat_of_entries(out, debian.lists);
    // apt renames each .deb it fetched into place, so a directory's own times tell of every
    // new, removed or replaced one: a refused open pays one stat here, not one per .deb.
    for (const auto& dir : deb_dirs()) add_stat(out, dir);
  }
  return out;
}

std::vector<std::filesystem::path> IndexReloader::deb_dirs() const {
  const auto& debian = settings_.sources.debian;
  if (!debian.debs.empty()) return debian.debs;
  return {settings_.sources.root / "var/cache/apt/archives"};
}

std::vector<std::filesystem::path> IndexReloader::watched_dirs() const {
  const auto& sources = settings_.sources;
  std::vector<std::filesystem::path> out = sources.packages;
  if (sources.debian.enabled()) {
    out.push_back(sources.debian.lists);
    for (const auto& dir : deb_dirs()) out.push_back(dir);
  }
  return out;
}

uint64_t IndexReloader::request() {
  const uint64_t ticket = requested_.fetch_add(1) + 1;
  uint64_t one = 1;
  // Nothing useful can be done from a signal handler if this fails; the next request retries.
  [[maybe_unused]] ssize_t n = write(wake_.get(), &one, sizeof one);
  return ticket;
}

bool IndexReloader::wait_for(uint64_t ticket, Clock::time_point deadline) const {
  std::unique_lock lock(stats_mutex_);
  return finished_changed_.wait_until(lock, deadline, [&] { return finished_ >= ticket; });
}

uint64_t IndexReloader::changes_seen() const {
  std::lock_guard lock(events_mutex_);
  return changes_read_;
}

bool IndexReloader::quiet() const {
  // Under the lock the reloader reads events with, so that an event it has taken from the
  // queue and not yet counted is never missed.
  std::lock_guard lock(events_mutex_);
  if (!watches_hold_ || (!database_.empty() && database_wd_ < 0)) return false;
  pollfd queue{inotify_.get(), POLLIN, 0};
  if (poll(&queue, 1, 0) != 0) return false;
  return changes_read_ == changes_loaded_;
}

CatchUp IndexReloader::catch_up(Clock::time_point deadline) {
  // The common refusal, a file no package has, then costs no look at the sources.
  if (quiet()) return CatchUp::Current;
  const std::string sources = sources_fingerprint();
  {
    // Nothing newer to wait for: the snapshot in force was read from these very sources, or
    // a reload from them failed already.
    std::lock_guard lock(stats_mutex_);
    if (sources == loaded_from_ || sources == failed_from_) return CatchUp::Current;
  }
  const uint64_t before = checker_.index()->generation();
  if (!wait_for(request(), deadline)) return CatchUp::TimedOut;
  return checker_.index()->generation() != before ? CatchUp::Newer : CatchUp::Current;
}

IndexReloader::~IndexReloader() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    if (write(stop_.get(), &one, sizeof one) < 0) log_.notice(LOG_ERR, "cannot stop the reloader");
    thread_.join();
  }
}

int IndexReloader::watch(const std::filesystem::path& dir, uint32_t mask) {
  int wd = inotify_add_watch(inotify_.get(), dir.c_str(), mask);
  if (wd < 0) {
    log_.notice(LOG_WARNING, "cannot watch " + dir.string() + " for package changes: " +
                                 std::strerror(errno) + " (reload with SIGHUP)");
  }
  return wd;
}

void IndexReloader::watch_database() {
  // Absent for now is expected while it is being replaced: the parent's watch brings it back.
  if (std::filesystem::is_directory(database_)) database_wd_ = watch(database_, kDatabaseMask);
}

bool IndexReloader::relevant(const inotify_event* ev) {
  if ((ev->mask & (kSelfMask | IN_IGNORED)) &&
      std::find(dir_wds_.begin(), dir_wds_.end(), ev->wd) != dir_wds_.end()) {
    // The path is no longer watched (the reloader goes on without it, as before): from now on
    // only a look at the sources themselves can tell that nothing changed.
    watches_hold_ = false;
    return true;
  }
  if (ev->wd == dpkg_wd_) {
    std::string_view name = ev->len ? ev->name : "";
    return name == dpkg_status_.filename().string() || name == "diversions";
  }
  if (ev->wd == database_parent_wd_) {
    if (ev->len == 0 || database_.filename() != ev->name) return false;
    if (ev->mask & (IN_CREATE | IN_MOVED_TO)) watch_database();
    return true;
  }
  if (ev->wd == database_wd_ && (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))) {
    // Moved away, the watch would follow the directory to its new name; stop it there.
    if (ev->mask & IN_MOVE_SELF) inotify_rm_watch(inotify_.get(), database_wd_);
    database_wd_ = -1;
    return true;
  }
  return !ignored(ev);
}

Result<void> IndexReloader::start() {
  inotify_.reset(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  wake_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  stop_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!inotify_ || !wake_ || !stop_) return errno_error("reloader");
  bool all_watched = true;
  if (!database_.empty()) {
    database_parent_wd_ = watch(database_.parent_path(), kParentMask);
    watch_database();
    all_watched = database_parent_wd_ >= 0;
  }
  auto watch_dir = [&](const std::filesystem::path& dir) {
    const int wd = std::filesystem::is_directory(dir) ? watch(dir, kWatchMask | kSelfMask) : -1;
    if (wd >= 0) dir_wds_.push_back(wd);
    all_watched &= wd >= 0;
    return wd;
  };
  for (const auto& p : watched_dirs()) watch_dir(p);
  // dpkg replaces its status by a rename in its own directory, beside lock and journal
  // files that change on every run: only the status and the diversions count.
  if (!dpkg_status_.empty()) dpkg_wd_ = watch_dir(dpkg_status_.parent_path());
  watches_hold_ = all_watched;
  // What changed between the load and the watches no event tells of.
  if (sources_fingerprint() != loaded_from_) ++changes_read_;
  thread_ = named_thread("dfs-reloader", [this] { run(); });
  return {};
}

ReloadStats IndexReloader::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

void IndexReloader::run() {
  using Clock = std::chrono::steady_clock;
  bool pending = false;  // a relevant change was seen at first_change
  Clock::time_point first_change{};
  for (;;) {
    pollfd fds[3] = {
        {stop_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}, {inotify_.get(), POLLIN, 0}};
    int timeout = -1;
    if (pending) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(first_change + kMaxDelay -
                                                                        Clock::now());
      timeout = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(kQuietMs, left.count())));
    }
    int n = poll(fds, 3, timeout);
    if (n < 0 && errno != EINTR) {
      log_.notice(LOG_ERR, std::string("reloader stopped: ") + std::strerror(errno));
      return;
    }
    if (fds[0].revents & POLLIN) return;
    bool now = false;
    if (fds[1].revents & POLLIN) {
      drain(wake_.get());
      now = true;
    }
    if (fds[2].revents & POLLIN) {
      alignas(inotify_event) char buf[4096];
      ssize_t len;
      bool changed = false;
      // Read and counted under one lock: see quiet().
      std::lock_guard lock(events_mutex_);
      while ((len = read(inotify_.get(), buf, sizeof buf)) > 0) {
        for (char* p = buf; p < buf + len;) {
          auto* ev = reinterpret_cast<inotify_event*>(p);
          changed |= relevant(ev);
          p += sizeof(inotify_event) + ev->len;
        }
      }
      changes_read_ += changed;
      if (changed && !pending) {
        pending = true;
        first_change = Clock::now();
      }
    }
    // Quiet for kQuietMs (poll timed out), or changing for longer than kMaxDelay.
    if (pending && (n == 0 || Clock::now() >= first_change + kMaxDelay)) now = true;
    if (now) {
      pending = false;
      // Every ticket handed out by now is served by this reload.
      const uint64_t serving = requested_.load();
      const uint64_t seen = changes_seen();
      const std::string sources = sources_fingerprint();
      reload(sources);
      {
        std::lock_guard lock(events_mutex_);
        changes_loaded_ = seen;
      }
      {
        std::lock_guard lock(stats_mutex_);
        finished_ = std::max(finished_, serving);
      }
      finished_changed_.notify_all();
    }
  }
}

void IndexReloader::reload(const std::string& sources) {
  const auto old = current_.index;
  const uint64_t generation = old->generation() + 1;
  auto loaded = load_trusted_index(settings_, generation, &current_);
  std::lock_guard lock(stats_mutex_);
  if (!loaded) {
    failed_from_ = sources;
    ++stats_.failures;
    stats_.last_error = loaded.error().message;
    log_.notice(LOG_ERR, "reload failed, keeping generation " + std::to_string(old->generation()) +
                             ": " + loaded.error().message);
    return;
  }
  report_index(*loaded->index, log_);
  checker_.set_index(loaded->index);
  current_ = *loaded;
  loaded_from_ = sources;
  ++stats_.reloads;
  stats_.last_seconds = loaded->load_seconds;
  stats_.last_error.clear();
  log_.notice(LOG_INFO, "reloaded: generation " + std::to_string(generation) + ", " +
                            std::to_string(loaded->index->packages().size()) + " packages, " +
                            std::to_string(loaded->index->file_count()) + " files, " +
                            std::to_string(loaded->index->rejected().size()) + " rejected, " +
                            std::to_string(loaded->index->reused_packages()) + " unchanged, " +
                            std::to_string(static_cast<int>(loaded->load_seconds * 1000)) + " ms");
}

}  // namespace digestfs
