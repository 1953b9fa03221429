#include "src/primer.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <tbb/parallel_for_each.h>
#include <tbb/task_arena.h>
#include <unistd.h>

#include <chrono>

#include "src/unique_fd.hpp"

namespace digestfs {
namespace {

// The kernel's ioprio ABI (linux/ioprio.h does not compile as C++ on every kernel's headers).
constexpr int kIoprioWhoProcess = 1;
constexpr int kIoprioIdle = 3 << 13;  // IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT

// Per thread: the priming work yields the disk to everything else.
class IdleIoPriority {
 public:
  IdleIoPriority() {
    saved_ = static_cast<int>(syscall(SYS_ioprio_get, kIoprioWhoProcess, 0));
    syscall(SYS_ioprio_set, kIoprioWhoProcess, 0, kIoprioIdle);
  }
  ~IdleIoPriority() {
    if (saved_ >= 0) syscall(SYS_ioprio_set, kIoprioWhoProcess, 0, saved_);
  }

 private:
  int saved_;
};

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
  thread_ = std::thread([this] { run(); });
}

PrimeProgress Primer::progress() const {
  return PrimeProgress{total_.load(), files_.load(), bytes_.load(), failures_.load(), done_.load()};
}

void Primer::run() {
  const auto start = std::chrono::steady_clock::now();
  auto index = checker_.index();
  std::string prefix = paths_.prefix;
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  std::vector<uint32_t> work;
  for (size_t i = 0; i < index->file_count(); ++i) {
    FileEntry e = index->entry(i);
    if (S_ISREG(e.mode()) && !e.is_ghost() && !e.digest().empty()) work.push_back(static_cast<uint32_t>(i));
  }
  total_ = work.size();
  tbb::task_arena arena(jobs_ ? static_cast<int>(jobs_) : tbb::task_arena::automatic);
  arena.execute([&] {
    tbb::parallel_for_each(work.begin(), work.end(), [&](uint32_t i) {
      if (stopping_) return;
      IdleIoPriority idle;
      FileEntry e = index->entry(i);
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
    });
  });
  done_ = true;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log_.notice(LOG_INFO, "priming done: " + std::to_string(files_.load()) + " files, " +
                            std::to_string(bytes_.load()) + " bytes, " +
                            std::to_string(failures_.load()) + " failures, " +
                            std::to_string(static_cast<int>(secs * 1000)) + " ms");
}

}  // namespace digestfs
