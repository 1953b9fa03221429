#include "src/daemon/integrity_checker.hpp"

#include <syslog.h>

#include <algorithm>
#include <cstdio>
#include <optional>

#include "src/base/escape.hpp"
#include "src/base/hex.hpp"

namespace digestfs {
namespace {

constexpr mode_t kSetId = S_ISUID | S_ISGID;

Decision allowed(Decision d, Reason reason, bool verified = false) {
  d.allow = true;
  d.error = 0;
  d.reason = reason;
  d.verified = verified;
  return d;
}

std::string package_of(const FileEntry& e) { return " package=" + e.package().nevra; }

}  // namespace

std::string_view reason_name(Reason r) {
  switch (r) {
    case Reason::Verified: return "verified";
    case Reason::NoEntry: return "no-entry";
    case Reason::DigestMismatch: return "digest-mismatch";
    case Reason::SizeMismatch: return "size-mismatch";
    case Reason::TypeMismatch: return "type-mismatch";
    case Reason::ChangedWhileHashing: return "changed-while-hashing";
    case Reason::ReadError: return "read-error";
    case Reason::Ghost: return "ghost";
    case Reason::ConfigSkipped: return "config-skipped";
    case Reason::LinkTargetMismatch: return "link-target-mismatch";
    case Reason::BlockMismatch: return "block-mismatch";
    case Reason::ModeMismatch: return "mode-mismatch";
    case Reason::ChangedUnderHandle: return "changed-under-handle";
    case Reason::OpenForWriting: return "open-for-writing";
  }
  return "unknown";
}

IntegrityChecker::IntegrityChecker(Policy policy, EventLog& log, BlockChecks blocks)
    : policy_(std::move(policy)), log_(log), blocks_(blocks), memo_(blocks.memory_bytes) {}

void IntegrityChecker::set_index(std::shared_ptr<const DigestIndex> index) {
  if (measurements_) {
    // Accepted headers in the order of their digests, so the log does not depend on the
    // database's order; then rejected packages (a header that cannot be trusted has no
    // trustworthy digest to log: zeros).
    std::vector<Measurement> accepted;
    for (const auto& p : index->packages()) {
      const auto& digest = measured_digest(p);
      accepted.push_back(make_measurement(
          "sha256", std::string(reinterpret_cast<const char*>(digest.data()), digest.size()),
          ima_event_name(measured_name(p))));
    }
    std::sort(accepted.begin(), accepted.end(),
              [](const Measurement& a, const Measurement& b) { return a.digest < b.digest; });
    for (const auto& m : accepted) measurements_->add(m);
    for (const auto& r : index->rejected()) {
      measurements_->add(
          make_measurement("sha256", std::string(32, '\0'), ima_event_name(measured_name(r))));
    }
  }
  index_.store(std::move(index));
  ++verdict_epoch_;
  std::lock_guard lock(listener_mutex_);
  if (index_listener_) index_listener_();
}

void IntegrityChecker::set_index_listener(std::function<void()> listener) {
  std::lock_guard lock(listener_mutex_);
  index_listener_ = std::move(listener);
}

void IntegrityChecker::measure(std::string_view path, const ContentDigest* actual,
                               std::optional<Reason> refused) {
  if (!measurements_) return;
  // A refusal is named apart from what was served, so that a verifier can tell an attack
  // that was blocked from one that got through: "refused:REASON:PATH".
  std::string name = ima_event_name(path);
  if (refused) name = "refused:" + std::string(reason_name(*refused)) + ":" + name;
  // No content digest (changed or unreadable while hashing, a link): zeros, as IMA records
  // a violation.
  if (!actual) {
    measurements_->add(make_measurement("sha256", std::string(32, '\0'), std::move(name)));
    return;
  }
  const auto bytes = actual->digest.bytes();
  measurements_->add(make_measurement(std::string(digest_algo::name(actual->digest.algo())),
                                      std::string(bytes.begin(), bytes.end()), std::move(name)));
}

std::optional<ContentDigest> IntegrityChecker::measured_content(int fd, const ContentStamp& stamp) {
  if (!measurements_ || fd < 0) return std::nullopt;
  auto looked = content_digest(fd, stamp, digest_algo::kSha256);
  if (!looked.digest) return std::nullopt;
  return std::move(looked.digest.value());
}

Decision IntegrityChecker::refuse(Judgement j, std::string_view path, int fd,
                                  const std::string& note) {
  Decision d = std::move(j.decision);
  bool soften =
      policy_.mode != Mode::Enforce || (j.config_file && policy_.config == ConfigPolicy::Audit);
  // What was not hashed to judge it (an unknown file, a size mismatch) still has content.
  const bool unreadable = d.reason == Reason::ChangedWhileHashing || d.reason == Reason::ReadError;
  if (!j.actual && !unreadable) j.actual = measured_content(fd, d.stamp);
  measure(path, j.actual ? &*j.actual : nullptr,
          soften ? std::nullopt : std::optional<Reason>(d.reason));
  std::string line = std::string(soften ? "AUDIT" : "DENY") + " path=" + field_value(path) +
                     " reason=" + std::string(reason_name(d.reason)) + j.detail + note;
  if (policy_.mode != Mode::Permissive) {
    log_.report(soften ? LOG_NOTICE : LOG_WARNING,
                std::string(path) + "|" + std::string(reason_name(d.reason)), line);
  }
  if (soften) {
    ++counters_.audits;
    d.allow = true;
    d.error = 0;
  } else {
    ++counters_.denials;
    ++counters_.denials_by_reason[static_cast<size_t>(d.reason)];
  }
  return d;
}

Decision IntegrityChecker::conclude(Judgement j, std::string_view path, int fd,
                                    const std::string& note) {
  if (j.decision.allow) return std::move(j.decision);
  if (!j.unknown) return refuse(std::move(j), path, fd, note);
  const UnknownPolicy policy = policy_.unknown_policy_for(path);
  if (policy == UnknownPolicy::Deny) return refuse(std::move(j), path, fd, note);
  // A file served without an entry is measured by its content.
  const auto actual = measured_content(fd, j.decision.stamp);
  measure(path, actual ? &*actual : nullptr);
  if (policy == UnknownPolicy::Audit) {
    log_.report(LOG_NOTICE, std::string(path) + "|no-entry",
                "AUDIT path=" + field_value(path) + " reason=no-entry");
    ++counters_.audits;
  }
  return allowed(j.decision, Reason::NoEntry);
}

template <class Judge>
Judgement IntegrityChecker::judged_up_to_date(Judge judge, std::string& note) {
  Judgement j = judge();
  const Reason r = j.decision.reason;
  const bool refused =
      !j.decision.allow && r != Reason::ChangedWhileHashing && r != Reason::ReadError;
  if (!refused || !catch_up_) return j;
  switch (catch_up_()) {
    case CatchUp::Current: return j;
    case CatchUp::Newer: ++counters_.reload_waits; return judge();
    case CatchUp::TimedOut:
      ++counters_.reload_wait_timeouts;
      note = " reload=unfinished";  // judged by the snapshot in force: the new one is late
      return j;
  }
  return j;
}

Decision IntegrityChecker::judge_open(int fd, const struct stat& st, std::string_view path) {
  ++counters_.opens;
  std::string note;
  Judgement j = judged_up_to_date([&] { return judge_content(fd, st, path, Hashing::Full); }, note);
  return conclude(std::move(j), path, fd, note);
}

std::optional<Decision> IntegrityChecker::judge_without_waiting(int fd, const struct stat& st,
                                                                std::string_view path) {
  Judgement j = judge_content(fd, st, path, Hashing::WithoutWaiting);
  if (!j.decision.allow) return std::nullopt;
  ++counters_.opens;
  if (j.decision.verified) ++(j.hashed ? counters_.memo_misses : counters_.memo_hits);
  return std::move(j.decision);
}

Judgement IntegrityChecker::judge_content(int fd, const struct stat& st, std::string_view path,
                                          Hashing how) {
  const auto index = index_.load();
  const EntryRange entries = index->lookup(path);
  Judgement j;
  Decision& d = j.decision;
  d.stamp = stamp_of(st);
  d.error = EACCES;
  if (entries.empty()) {
    d.reason = Reason::NoEntry;
    j.unknown = true;
    return j;
  }
  // The claims on this path that have content: the first one names what was expected.
  std::optional<FileEntry> first;
  bool size_fits = false, set_id_claimed = false;
  for (const FileEntry e : entries) {
    if (!S_ISREG(e.mode())) continue;
    if (e.is_ghost()) {
      d = allowed(d, Reason::Ghost);
      return j;
    }
    if (!first) first = e;
    j.config_file |= e.is_config();
    size_fits |= e.size() == static_cast<uint64_t>(st.st_size);
    set_id_claimed |= !e.verifies_mode() || (st.st_mode & kSetId & ~mode_t(e.mode())) == 0;
  }
  if (!first) {
    d.reason = Reason::TypeMismatch;
    j.detail = package_of(entries.front());
    return j;
  }
  // Signed content with a set-ID bit added beneath would run with privileges its package
  // never gave it: refused whatever its content (unless a claim leaves the mode unchecked,
  // as %verify(not mode) does).
  if (!set_id_claimed) {
    d.reason = Reason::ModeMismatch;
    char modes[64];
    std::snprintf(modes, sizeof modes, " mode=%04o expected_mode=%04o",
                  unsigned(st.st_mode & 07777), unsigned(first->mode() & 07777));
    j.detail = modes + package_of(*first);
    return j;
  }
  if (j.config_file && policy_.config == ConfigPolicy::Skip) {
    d = allowed(d, Reason::ConfigSkipped);
    return j;
  }
  if (!size_fits) {
    d.reason = Reason::SizeMismatch;
    j.detail = " size=" + std::to_string(st.st_size) +
               " expected_size=" + std::to_string(first->size()) +
               " expected=" + first->digest().text() + package_of(*first);
    return j;
  }
  // Claims may use different algorithms; each is hashed at most once per version.
  for (const FileEntry e : entries) {
    if (!S_ISREG(e.mode())) continue;
    std::optional<VerdictMemo::Lookup> looked;
    if (how == Hashing::Full) {
      looked = content_digest(fd, d.stamp, e.algo(), blocks_.on);
    } else if (st.st_size <= kHashedWithoutWaiting) {
      looked = memo_.digest_without_waiting(d.stamp, e.algo(), hasher(fd, d.stamp, e.algo(), true),
                                            blocks_.on);
    } else {
      looked = memo_.remembered(d.stamp, e.algo(), blocks_.on);
    }
    if (!looked) {  // not remembered, and not to be hashed now
      d.error = EWOULDBLOCK;
      return j;
    }
    j.hashed |= looked->source == VerdictMemo::Source::Hashed;
    if (how == Hashing::Full) {
      ++(looked->source == VerdictMemo::Source::Remembered ? counters_.memo_hits
                                                           : counters_.memo_misses);
    }
    if (!looked->digest) {
      d.reason =
          looked->digest.error().code == ESTALE ? Reason::ChangedWhileHashing : Reason::ReadError;
      d.error = d.reason == Reason::ChangedWhileHashing ? EACCES : EIO;
      j.detail = " error=\"" + looked->digest.error().message + "\"" + package_of(*first);
      return j;
    }
    if (looked->digest->digest.view() == e.digest()) {
      d.tree = std::move(looked->tree);
      d = allowed(d, Reason::Verified, true);
      return j;
    }
    j.actual = std::move(looked->digest.value());
  }
  d.reason = Reason::DigestMismatch;
  j.detail = " expected=" + first->digest().text() + " actual=" + j.actual->digest.text() +
             package_of(*first);
  return j;
}

VerdictMemo::Lookup IntegrityChecker::content_digest(int fd, const ContentStamp& stamp,
                                                     uint8_t algo, bool want_tree) {
  return memo_.digest(stamp, algo, hasher(fd, stamp, algo, false), want_tree);
}

VerdictMemo::HashFn IntegrityChecker::hasher(int fd, const ContentStamp& stamp, uint8_t algo,
                                             bool cached_only) {
  return [this, fd, stamp, algo, cached_only](BlockTree::Builder* tree) -> Result<ContentDigest> {
    ++counters_.hashing;
    struct Done {
      std::atomic<uint64_t>& hashing;
      ~Done() { --hashing; }
    } done{counters_.hashing};
    auto digest = hash_fd(fd, algo, static_cast<uint64_t>(stamp.size), tree, cached_only);
    // Only a look into the page cache gives up to wait, and then nothing was read to check.
    if (cached_only && !digest && digest.error().code == EWOULDBLOCK) return digest;
    struct stat after;
    if (fstat(fd, &after) != 0 || !(stamp_of(after) == stamp)) {
      return Error{ESTALE, "changed while hashing"};
    }
    if (digest) counters_.bytes_hashed += digest->bytes;
    return digest;
  };
}

bool IntegrityChecker::prime(int fd, const struct stat& st, const FileEntry& entry) {
  auto looked = content_digest(fd, stamp_of(st), entry.algo(), blocks_.on);
  return looked.digest && looked.digest->digest.view() == entry.digest();
}

bool IntegrityChecker::block_mismatch(std::string_view path, const ContentStamp& stamp,
                                      uint64_t block, const Sha256& expected,
                                      const std::optional<Sha256>& actual) {
  memo_.forget(stamp);
  ++verdict_epoch_;
  ++counters_.block_mismatches;
  return refuse_served(path, Reason::BlockMismatch,
                       " block=" + std::to_string(block) + " expected=sha256:" + to_hex(expected) +
                           " actual=" + (actual ? "sha256:" + to_hex(*actual) : "none"));
}

bool IntegrityChecker::refuse_served(std::string_view path, Reason reason,
                                     const std::string& detail) {
  const bool deny = policy_.mode == Mode::Enforce;
  if (deny) {
    ++counters_.denials;
    ++counters_.denials_by_reason[static_cast<size_t>(reason)];
  } else {
    ++counters_.audits;
  }
  if (policy_.mode != Mode::Permissive) {
    const std::string_view name = reason_name(reason);
    log_.report(deny ? LOG_WARNING : LOG_NOTICE, std::string(path) + "|" + std::string(name),
                std::string(deny ? "DENY" : "AUDIT") + " path=" + field_value(path) +
                    " reason=" + std::string(name) + detail);
  }
  return deny;
}

Decision IntegrityChecker::judge_link(std::string_view path, std::string_view target) {
  std::string note;
  Judgement j = judged_up_to_date([&] { return judge_target(path, target); }, note);
  return conclude(std::move(j), path, -1, note);
}

bool IntegrityChecker::allows_link(std::string_view path, std::string_view target) const {
  return judge_target(path, target).decision.allow;
}

Judgement IntegrityChecker::judge_target(std::string_view path, std::string_view target) const {
  const auto index = index_.load();
  const EntryRange entries = index->lookup(path);
  Judgement j;
  Decision& d = j.decision;
  d.error = EACCES;
  if (entries.empty()) {
    d.reason = Reason::NoEntry;
    j.unknown = true;
    return j;
  }
  for (const FileEntry e : entries) {
    if (S_ISLNK(e.mode()) && e.linkto() == target) {
      d = allowed(d, Reason::Verified, true);
      return j;
    }
  }
  d.reason = Reason::LinkTargetMismatch;
  j.detail = " target=" + field_value(target) +
             " expected_target=" + field_value(entries.front().linkto()) +
             package_of(entries.front());
  return j;
}

}  // namespace digestfs
