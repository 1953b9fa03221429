#include "src/integrity_checker.hpp"

#include <syslog.h>

#include <algorithm>
#include <cstring>

#include "cache/trust_store.hpp"

namespace digestfs {
namespace {

std::string hex_digest(uint8_t algo, std::string_view digest) {
  return std::string(digest_algo::name(algo)) + ":" +
         to_hex(reinterpret_cast<const unsigned char*>(digest.data()), digest.size());
}

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
  }
  return "unknown";
}

IntegrityChecker::IntegrityChecker(Policy policy, EventLog& log)
    : policy_(std::move(policy)), log_(log) {}

// Applies mode and %config policy to a refusal, logs it, and counts it.
void IntegrityChecker::set_index(std::shared_ptr<const DigestIndex> index) {
  if (measurements_) {
    // Accepted headers in the order of their digests, so the log does not depend on the
    // database's order; then rejected packages (a header that cannot be trusted has no
    // trustworthy digest to log: zeros).
    std::vector<Measurement> accepted;
    for (const auto& p : index->packages()) {
      const auto& digest =
          p.region_sha256 != decltype(p.region_sha256){} ? p.region_sha256 : p.header_key;
      accepted.push_back(make_measurement(
          "sha256", std::string(reinterpret_cast<const char*>(digest.data()), digest.size()),
          "rpm:" + p.nevra));
    }
    std::sort(accepted.begin(), accepted.end(),
              [](const Measurement& a, const Measurement& b) { return a.digest < b.digest; });
    for (const auto& m : accepted) measurements_->add(m);
    for (const auto& r : index->rejected()) {
      measurements_->add(
          make_measurement("sha256", std::string(32, '\0'),
                           "rpm-rejected:" + r.nevra + ":" + std::string(verdict_name(r.verdict))));
    }
  }
  index_.store(std::move(index));
}

void IntegrityChecker::measure(std::string_view path, const ContentDigest* actual) {
  if (!measurements_) return;
  // No content digest (not hashed: a size mismatch, a refused unknown file): zeros, as IMA
  // records a violation.
  measurements_->add(actual ? make_measurement(std::string(digest_algo::name(actual->algo)),
                                               actual->digest, std::string(path))
                            : make_measurement("sha256", std::string(32, '\0'), std::string(path)));
}

Decision IntegrityChecker::conclude(Decision d, std::string_view path, const std::string& detail,
                                    bool config_file, const ContentDigest* actual) {
  if (d.allow) return d;
  measure(path, actual);
  bool soften =
      policy_.mode != Mode::Enforce || (config_file && policy_.config == ConfigPolicy::Audit);
  std::string line = std::string(soften ? "AUDIT" : "DENY") + " path=" + std::string(path) +
                     " reason=" + std::string(reason_name(d.reason)) + detail;
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

Decision IntegrityChecker::unknown(std::string_view path, int fd, const ContentStamp& stamp) {
  Decision d;
  d.reason = Reason::NoEntry;
  const UnknownPolicy policy = policy_.unknown_policy_for(path);
  if (policy != UnknownPolicy::Deny && measurements_) {
    // A file served without an entry is measured by its content.
    auto looked =
        fd >= 0 ? content_digest(fd, stamp, digest_algo::kSha256)
                : VerdictMemo::Lookup{Error{EBADF, "no content"}, VerdictMemo::Source::Hashed};
    measure(path, looked.digest ? &*looked.digest : nullptr);
  }
  switch (policy) {
    case UnknownPolicy::Allow: d.allow = true; return d;
    case UnknownPolicy::Audit:
      log_.report(LOG_NOTICE, std::string(path) + "|no-entry",
                  "AUDIT path=" + std::string(path) + " reason=no-entry");
      ++counters_.audits;
      d.allow = true;
      return d;
    case UnknownPolicy::Deny: break;
  }
  d.error = EACCES;
  return conclude(d, path, "", false);
}

Decision IntegrityChecker::judge_open(int fd, const struct stat& st, std::string_view path) {
  ++counters_.opens;
  auto index = index_.load();
  auto entries = index->lookup(path);
  if (entries.empty()) return unknown(path, fd, stamp_of(st));

  Decision d;
  d.stamp = stamp_of(st);
  d.error = EACCES;
  bool config_file = false;
  std::vector<FileEntry> regular;
  for (const auto& e : entries) {
    if (!S_ISREG(e.mode())) continue;
    if (e.is_ghost()) {
      d.allow = true;
      d.reason = Reason::Ghost;
      return d;
    }
    config_file |= e.is_config();
    regular.push_back(e);
  }
  const std::string package = " package=" + entries.front().package().nevra;
  if (regular.empty()) {
    d.reason = Reason::TypeMismatch;
    return conclude(d, path, package, false);
  }
  if (config_file && policy_.config == ConfigPolicy::Skip) {
    d.allow = true;
    d.reason = Reason::ConfigSkipped;
    return d;
  }
  bool size_fits = false;
  for (const auto& e : regular) size_fits |= e.size() == static_cast<uint64_t>(st.st_size);
  const FileEntry& first = regular.front();
  const std::string expected =
      " expected=" +
      hex_digest(first.algo(),
                 std::string_view(reinterpret_cast<const char*>(first.digest().data()),
                                  first.digest().size()));
  if (!size_fits) {
    d.reason = Reason::SizeMismatch;
    return conclude(d, path,
                    " size=" + std::to_string(st.st_size) +
                        " expected_size=" + std::to_string(first.size()) + expected + package,
                    config_file);
  }

  // Claims may use different algorithms; each is hashed at most once per version.
  for (const auto& e : regular) {
    auto looked = content_digest(fd, d.stamp, e.algo());
    ++(looked.source == VerdictMemo::Source::Remembered ? counters_.memo_hits
                                                        : counters_.memo_misses);
    if (!looked.digest) {
      d.reason =
          looked.digest.error().code == ESTALE ? Reason::ChangedWhileHashing : Reason::ReadError;
      d.error = d.reason == Reason::ChangedWhileHashing ? EACCES : EIO;
      return conclude(d, path, " error=\"" + looked.digest.error().message + "\"" + package,
                      config_file);
    }
    if (matches(*looked.digest, e)) {
      d.allow = true;
      d.verified = true;
      d.reason = Reason::Verified;
      d.error = 0;
      return d;
    }
    if (&e == &regular.back()) {
      d.reason = Reason::DigestMismatch;
      return conclude(d, path,
                      expected + " actual=" + hex_digest(e.algo(), looked.digest->digest) + package,
                      config_file, &*looked.digest);
    }
  }
  return d;
}

VerdictMemo::Lookup IntegrityChecker::content_digest(int fd, const ContentStamp& stamp,
                                                     uint8_t algo) {
  return memo_.digest(stamp, algo, [&]() -> Result<ContentDigest> {
    ++counters_.hashing;
    struct Done {
      std::atomic<uint64_t>& hashing;
      ~Done() { --hashing; }
    } done{counters_.hashing};
    auto digest = hash_fd(fd, algo, static_cast<uint64_t>(stamp.size));
    struct stat after;
    if (fstat(fd, &after) != 0 || !(stamp_of(after) == stamp)) {
      return Error{ESTALE, "changed while hashing"};
    }
    if (digest) counters_.bytes_hashed += digest->bytes;
    return digest;
  });
}

bool IntegrityChecker::matches(const ContentDigest& actual, const FileEntry& entry) {
  auto expected = entry.digest();
  return actual.algo == entry.algo() && actual.digest.size() == expected.size() &&
         std::memcmp(actual.digest.data(), expected.data(), expected.size()) == 0;
}

bool IntegrityChecker::prime(int fd, const struct stat& st, const FileEntry& entry) {
  auto looked = content_digest(fd, stamp_of(st), entry.algo());
  return looked.digest && matches(*looked.digest, entry);
}

Decision IntegrityChecker::judge_link(std::string_view path, std::string_view target) {
  auto index = index_.load();
  auto entries = index->lookup(path);
  if (entries.empty()) return unknown(path, -1, ContentStamp{});
  Decision d;
  d.error = EACCES;
  for (const auto& e : entries) {
    if (S_ISLNK(e.mode()) && e.linkto() == target) {
      d.allow = true;
      d.verified = true;
      d.reason = Reason::Verified;
      d.error = 0;
      return d;
    }
  }
  d.reason = Reason::LinkTargetMismatch;
  return conclude(d, path,
                  " target=" + std::string(target) +
                      " expected_target=" + std::string(entries.front().linkto()) +
                      " package=" + entries.front().package().nevra,
                  false);
}

}  // namespace digestfs
