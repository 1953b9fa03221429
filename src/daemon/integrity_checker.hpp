// IntegrityChecker: decides whether an open for reading may be served, by the path's own
// entries in the current DigestIndex and the content digest of the lower file (remembered in
// the VerdictMemo). It returns a Decision; the FUSE layer only translates it into a reply.
#pragma once

#include <sys/stat.h>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "cache/digest_index.hpp"
#include "src/config/policy.hpp"
#include "src/config/settings.hpp"
#include "src/daemon/event_log.hpp"
#include "src/daemon/measurement_log.hpp"
#include "src/daemon/verdict_memo.hpp"

namespace digestfs {

enum class Reason {
  Verified,  // content matches a signed digest of this path
  NoEntry,   // no accepted package claims this path
  DigestMismatch,
  SizeMismatch,
  TypeMismatch,  // the index says this path is not a regular file
  ChangedWhileHashing,
  ReadError,
  Ghost,  // %ghost: content is not checked
  ConfigSkipped,
  LinkTargetMismatch,
  BlockMismatch,       // a block read from a verified file is not the block that was verified
  ModeMismatch,        // the file grants set-user-ID or set-group-ID that no claim grants
  ChangedUnderHandle,  // a read without block checks found the verified version changed
  // Verified, but a handle open for writing shares the page cache a mapping would read from.
  OpenForWriting,
};
constexpr size_t kReasonCount = static_cast<size_t>(Reason::OpenForWriting) + 1;
std::string_view reason_name(Reason r);

struct Decision {
  bool allow = false;
  int error = 0;          // errno for a refusal
  bool verified = false;  // served because content matched: reads are checked for changes
  Reason reason = Reason::NoEntry;
  ContentStamp stamp;  // the version that was judged
  // Verified with block checks on: the block tree every read of this version is checked by.
  std::shared_ptr<const BlockTree> tree;
};

// What judging found, before policy is applied and anything is logged, counted or measured.
struct Judgement {
  Decision decision;     // allowed when content (or a link's target) matched, a %ghost, ...
  bool unknown = false;  // no accepted package claims the path
  bool config_file = false;
  std::string detail;                   // what the log line of a refusal says beyond the reason
  std::optional<ContentDigest> actual;  // what the content hashed to, when it was hashed
  bool hashed = false;                  // a digest was computed for it, not remembered
};

// Asked before a refusal: whether the sources have changed since the snapshot in force was
// loaded, and if so, whether the reload that follows was waited for.
enum class CatchUp { Current, Newer, TimedOut };

struct CheckerCounters {
  std::atomic<uint64_t> opens{0}, memo_hits{0}, memo_misses{0}, bytes_hashed{0};
  std::atomic<uint64_t> hashing{0};  // files being hashed right now
  std::atomic<uint64_t> denials{0}, audits{0}, block_mismatches{0};
  std::atomic<uint64_t> reload_waits{0}, reload_wait_timeouts{0};  // refusals that waited
  std::array<std::atomic<uint64_t>, kReasonCount> denials_by_reason{};
};

class IntegrityChecker {
 public:
  IntegrityChecker(Policy policy, EventLog& log, BlockChecks blocks = {});

  // Serves `index` from now on; with measurements on, its package headers are measured first.
  void set_index(std::shared_ptr<const DigestIndex> index);
  std::shared_ptr<const DigestIndex> index() const { return index_.load(); }
  // Called after each new index is in force, on the thread that set it (so it must not
  // block): a verdict kept outside the checker (a symlink target the kernel caches) is then
  // to be judged again.
  void set_index_listener(std::function<void()> listener);

  // fd is the lower file opened for reading; st its fstat; path its absolute index path.
  Decision judge_open(int fd, const struct stat& st, std::string_view path);
  // judge_open's decision when it is an allow that needs no waiting, for the request loop: the
  // content is remembered to match, or (a file of at most kHashedWithoutWaiting bytes, all in
  // the page cache, that nobody else is hashing, its ctime settled) hashed here and found to
  // match, or the path needs no content check. Nothing otherwise, and nothing is logged,
  // measured or counted: judge_open decides (it may hash, wait for a reload, log a refusal;
  // a digest hashed here is remembered for it).
  std::optional<Decision> judge_without_waiting(int fd, const struct stat& st,
                                                std::string_view path);
  // Hashing this much takes about as long as answering a request (tens of microseconds).
  static constexpr off_t kHashedWithoutWaiting = 64 * 1024;
  // A symlink's target against the path's entries (no following).
  Decision judge_link(std::string_view path, std::string_view target);
  // Whether the path's entries name this target: judge_link's allow, for the request loop
  // (nothing waits, nothing is logged or counted). When false, judge_link decides.
  bool allows_link(std::string_view path, std::string_view target) const;
  // Priming: remembers the content digest of fd for entry's algorithm; true when it matches.
  // Counts neither as an open nor as a memo hit or miss.
  bool prime(int fd, const struct stat& st, const FileEntry& entry);

  // A block read from `path` at version `stamp` is not what was verified: logs it, counts it
  // and forgets the version, so that the next open verifies the file from scratch. True when
  // the read must be refused (enforce mode).
  bool block_mismatch(std::string_view path, const ContentStamp& stamp, uint64_t block,
                      const Sha256& expected, const std::optional<Sha256>& actual);

  // A refusal of what was verified at `path` (a block read, an open beside a writer, a
  // changed version read without block checks) for `reason`: logged with `detail` and
  // counted, the policy applied; true when it must be refused (enforce mode).
  bool refuse_served(std::string_view path, Reason reason, const std::string& detail = "");

  // See MountCore::verdict_epoch; bumped after each change it stands for, so that a verdict
  // judged before the change never carries the epoch after it.
  uint64_t verdict_epoch() const { return verdict_epoch_.load(); }
  // An open answered by a verdict reused (MountCore::reopened).
  void reopened() {
    ++counters_.opens;
    ++counters_.memo_hits;
  }

  const CheckerCounters& counters() const { return counters_; }
  const BlockChecks& block_checks() const { return blocks_; }
  TreeStats tree_stats() const { return memo_.tree_stats(); }
  // Every refusal first asks `catch_up`: an open racing a package install is judged by the
  // snapshot that has the package, once the reload has run.
  void set_catch_up(std::function<CatchUp()> catch_up) { catch_up_ = std::move(catch_up); }
  // Refusals and files served without an entry are measured into `log` from now on.
  void set_measurements(MeasurementLog* log) { measurements_ = log; }
  const Policy& policy() const { return policy_; }

 private:
  // How judge_content may come by a digest it does not remember.
  enum class Hashing { Full, WithoutWaiting };
  // Without waiting, content whose digest it cannot come by is left undecided (error
  // EWOULDBLOCK), and nothing is counted.
  Judgement judge_content(int fd, const struct stat& st, std::string_view path, Hashing how);
  Judgement judge_target(std::string_view path, std::string_view target) const;
  // `judge` again against a newer snapshot when the one in force may be behind the sources.
  template <class Judge>
  Judgement judged_up_to_date(Judge judge, std::string& note);
  // Policy applied, the event logged, counted, measured. fd: the content, for measuring an
  // unknown file that is served (-1: none).
  Decision conclude(Judgement j, std::string_view path, int fd, const std::string& note);
  Decision refuse(Judgement j, std::string_view path, int fd, const std::string& note);
  // Measures what was served at path, or (refused) what was refused there and why.
  void measure(std::string_view path, const ContentDigest* actual,
               std::optional<Reason> refused = std::nullopt);
  // The SHA-256 of fd's version `stamp` for the measurement log (none: not measuring, no
  // fd, or the content could not be hashed).
  std::optional<ContentDigest> measured_content(int fd, const ContentStamp& stamp);
  // The content digest of fd's version `stamp`: remembered, or hashed with a stat before and
  // after (a change in between is an ESTALE error, never a digest).
  VerdictMemo::Lookup content_digest(int fd, const ContentStamp& stamp, uint8_t algo,
                                     bool want_tree = false);
  // What hashes fd's version `stamp` for the memo; with `cached_only`, from the page cache
  // only (see hash_fd).
  VerdictMemo::HashFn hasher(int fd, const ContentStamp& stamp, uint8_t algo, bool cached_only);

  Policy policy_;
  EventLog& log_;
  BlockChecks blocks_;
  VerdictMemo memo_;
  std::atomic<std::shared_ptr<const DigestIndex>> index_;
  CheckerCounters counters_;
  std::atomic<uint64_t> verdict_epoch_{0};
  MeasurementLog* measurements_ = nullptr;
  std::function<CatchUp()> catch_up_;
  std::mutex listener_mutex_;             // the listener is set while reloads may already run
  std::function<void()> index_listener_;  // guarded by listener_mutex_
};

}  // namespace digestfs
