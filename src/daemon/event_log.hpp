// EventLog: one line per refusal or audit event, to syslog and (in the foreground) stderr.
// A burst of the same event on the same path is rate-limited, never dropped silently: the
// next line for it says how many were suppressed, and the total is counted.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace digestfs {

class EventLog {
 public:
  // With `notices_to_stderr` false, only refusals and audits reach stderr; notices go to
  // syslog alone.
  EventLog(bool to_stderr, bool to_syslog, bool notices_to_stderr = true)
      : to_stderr_(to_stderr), to_syslog_(to_syslog), notices_to_stderr_(notices_to_stderr) {}
  // key identifies "the same event" (path and reason); line is the whole message.
  void report(int syslog_priority, const std::string& key, const std::string& line);
  // Operational messages (mount, reload, errors): never rate-limited.
  void notice(int syslog_priority, const std::string& line);
  // Why the daemon gives up: on stderr in the foreground even when notices are not.
  void failure(const std::string& line);
  uint64_t suppressed() const { return suppressed_total_.load(); }

 private:
  struct Recent {
    std::chrono::steady_clock::time_point last;
    uint64_t suppressed = 0;
  };
  void emit(int priority, const std::string& line, bool to_stderr);
  bool to_stderr_, to_syslog_, notices_to_stderr_;
  std::mutex mutex_;
  std::unordered_map<std::string, Recent> recent_;
  std::atomic<uint64_t> suppressed_total_{0};
};

class DigestIndex;

// Logs what an operator must see about a new index: every rejected package with its reason,
// and every package trusted with MD5 or SHA-1 file digests (allow-weak-digests).
void report_index(const DigestIndex& index, EventLog& log);

}  // namespace digestfs
