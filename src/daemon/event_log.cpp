#include "src/daemon/event_log.hpp"

#include <syslog.h>

#include <cstdio>

#include "cache/digest_index.hpp"
#include "src/base/escape.hpp"

namespace digestfs {
namespace {
constexpr auto kWindow = std::chrono::seconds(5);
constexpr size_t kMaxTracked = 4096;
}  // namespace

void EventLog::emit(int priority, const std::string& text, bool to_stderr) {
  // Whatever a line quotes (a package's name, librpm's reason), it stays one line.
  const std::string line = control_escaped(text);
  if (to_syslog_) syslog(priority, "%s", line.c_str());
  if (to_stderr) std::fprintf(stderr, "digestfs: %s\n", line.c_str());
}

void EventLog::notice(int priority, const std::string& line) {
  emit(priority, line, to_stderr_ && notices_to_stderr_);
}

void EventLog::failure(const std::string& line) { emit(LOG_ERR, line, to_stderr_); }

void EventLog::report(int priority, const std::string& key, const std::string& line) {
  const auto now = std::chrono::steady_clock::now();
  uint64_t suppressed = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = recent_.find(key);
    if (it != recent_.end() && now - it->second.last < kWindow) {
      ++it->second.suppressed;
      ++suppressed_total_;
      return;
    }
    if (it != recent_.end()) {
      suppressed = it->second.suppressed;
      it->second = Recent{now, 0};
    } else {
      if (recent_.size() >= kMaxTracked) {
        // Forget quiet keys; their suppressed counts are already in the total.
        std::erase_if(recent_, [&](const auto& kv) { return now - kv.second.last >= kWindow; });
      }
      recent_.emplace(key, Recent{now, 0});
    }
  }
  emit(priority, suppressed ? line + " suppressed=" + std::to_string(suppressed) : line,
       to_stderr_);
}

void report_index(const DigestIndex& index, EventLog& log) {
  for (const auto& r : index.rejected()) {
    log.notice(LOG_WARNING, "REJECTED package=" + field_value(r.nevra) +
                                " verdict=" + std::string(verdict_name(r.verdict)) +
                                " origin=" + r.origin + " reason=\"" + r.reason + "\"");
  }
  for (const auto& p : index.packages()) {
    if (digest_algo::is_weak(p.digest_algo)) {
      log.notice(LOG_WARNING, "WEAK-DIGESTS package=" + p.nevra +
                                  " algo=" + std::string(digest_algo::name(p.digest_algo)) +
                                  ": trusted only because allow-weak-digests is set");
    }
  }
}

}  // namespace digestfs
