#include "src/daemon/primer.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <tbb/task_arena.h>
#include <tbb/task_scheduler_observer.h>
#include <unistd.h>

#include <chrono>

#include "cache/largest_first.hpp"
#include "src/base/thread_name.hpp"
#include "src/base/unique_fd.hpp"

namespace digestfs {
namespace {

// The kernel's ioprio ABI (linux/ioprio.h does not compile as C++ on every kernel's headers).
constexpr int kIoprioWhoProcess = 1;
constexpr int kIoprioIdle = 3 << 13;  // IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT

// Every thread that works in the priming arena yields the disk to everything else while it
// is there (I/O priority is per thread), and gets its own priority back when it leaves.
class IdleIoWhileInArena : public tbb::task_scheduler_observer {
 public:
  explicit IdleIoWhileInArena(tbb::task_arena& arena) : tbb::task_scheduler_observer(arena) {
    observe(true);
  }
  ~IdleIoWhileInArena() override { observe(false); }
  void on_scheduler_entry(bool) override {
    saved_ = static_cast<int>(syscall(SYS_ioprio_get, kIoprioWhoProcess, 0));
    syscall(SYS_ioprio_set, kIoprioWhoProcess, 0, kIoprioIdle);
  }
  void on_scheduler_exit(bool) override {
    if (saved_ >= 0) syscall(SYS_ioprio_set, kIoprioWhoProcess, 0, saved_);
  }

 private:
  static thread_local int saved_;
};
thread_local int IdleIoWhileInArena::saved_ = -1;

// The entry's path relative to the source, or empty when the source does not hold it.
std::string relative_to_source(const std::string& path, const std::string& prefix) {
  if (prefix == "/") return path.substr(1);
  if (path.size() > prefix.size() && path.starts_with(prefix) && path[prefix.size()] == '/') {
    return path.substr(prefix.size() + 1);
  }
  return {};
}

}  // namespace

Primer::Primer(IntegrityChecker& checker, int source_fd, PathMapping paths, EventLog& log,
               unsigned jobs)
    : checker_(checker), source_fd_(source_fd), paths_(std::move(paths)), log_(log), jobs_(jobs) {}

Primer::~Primer() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void Primer::start() {
  thread_ = named_thread("dfs-primer", [this] { run(); });
}

PrimeProgress Primer::progress() const {
  return PrimeProgress{total_.load(),    files_.load(),      bytes_.load(),
                       failures_.load(), elapsed_ms_.load(), done_.load()};
}

void Primer::prime_one(const DigestIndex& index, uint32_t record, const std::string& prefix) {
  FileEntry e = index.entry(record);
  const std::string rel = relative_to_source(e.path(), prefix);
  if (rel.empty()) return;
  UniqueFd fd(openat(source_fd_, rel.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
  struct stat st;
  if (!fd || fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      !checker_.prime(fd.get(), st, e)) {
    ++failures_;
  } else {
    bytes_ += static_cast<uint64_t>(st.st_size);
  }
  ++files_;
}

void Primer::run() {
  const auto start = std::chrono::steady_clock::now();
  auto index = checker_.index();
  std::string prefix = paths_.prefix;
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  std::vector<uint32_t> work;
  for (size_t i = 0; i < index->file_count(); ++i) {
    FileEntry e = index->entry(i);
    if (S_ISREG(e.mode()) && !e.is_ghost() && !e.digest().empty())
      work.push_back(static_cast<uint32_t>(i));
  }
  total_ = work.size();
  log_.notice(LOG_INFO, "priming " + std::to_string(work.size()) + " files");
  tbb::task_arena arena(jobs_ ? static_cast<int>(jobs_) : tbb::task_arena::automatic);
  arena.initialize();
  IdleIoWhileInArena idle(arena);
  arena.execute([&] {
    for_each_largest_first(*index, work, [&](uint32_t record) {
      if (!stopping_) prime_one(*index, record, prefix);
    });
  });
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  elapsed_ms_ = static_cast<uint64_t>(secs * 1000);
  done_ = true;
  log_.notice(LOG_INFO, "priming done: " + std::to_string(files_.load()) + " files, " +
                            std::to_string(bytes_.load()) + " bytes, " +
                            std::to_string(failures_.load()) + " failures, " +
                            std::to_string(static_cast<int>(secs * 1000)) + " ms");
}

}  // namespace digestfs
