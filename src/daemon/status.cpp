#include "src/daemon/status.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "cache/index_report.hpp"
#include "src/base/hex.hpp"
#include "src/base/json_writer.hpp"

namespace digestfs {
namespace {

// One walk over the status, written either as JSON or as "name: value" lines.
class StatusSink {
 public:
  explicit StatusSink(bool json) : json_(json) {
    if (json_) j_.begin_object();
  }
  void field(std::string_view name, uint64_t v) {
    if (json_)
      j_.key(name).value(v);
    else
      text_ += std::string(name) + ": " + std::to_string(v) + "\n";
  }
  void field(std::string_view name, std::string_view v) {
    if (json_)
      j_.key(name).value(v);
    else
      text_ += std::string(name) + ": " + std::string(v) + "\n";
  }
  void flag(std::string_view name, bool v) {
    if (json_)
      j_.key(name).value(v);
    else
      text_ += std::string(name) + ": " + (v ? "yes" : "no") + "\n";
  }
  // The first kShownRejections only: a Debian root may have hundreds of packages with no
  // .deb at hand, and the status must fit in one xattr value (64 KiB). The whole list is
  // in the log and in `digestfs-cache rejected`.
  void rejected(const std::vector<RejectedHeader>& list) {
    constexpr size_t kShownRejections = 32;
    size_t shown = std::min(list.size(), kShownRejections);
    if (json_) {
      j_.key("packages_rejected_total").value(static_cast<uint64_t>(list.size()));
      j_.key("packages_rejected").begin_array();
      for (size_t i = 0; i < shown; ++i) rejected_json(j_, list[i], false);
      j_.end_array();
      return;
    }
    text_ += "packages_rejected: " + std::to_string(list.size()) + "\n";
    for (size_t i = 0; i < shown; ++i) {
      const auto& r = list[i];
      text_ += "  " + r.nevra + " " + std::string(verdict_name(r.verdict)) + ": " + r.reason + "\n";
    }
    if (shown < list.size())
      text_ += "  (" + std::to_string(list.size() - shown) + " more: digestfs-cache rejected)\n";
  }
  void denials(const CheckerCounters& c) {
    if (json_) j_.key("denials_by_reason").begin_object();
    for (size_t i = 0; i < kReasonCount; ++i) {
      uint64_t n = c.denials_by_reason[i].load();
      if (n == 0) continue;
      if (json_)
        j_.key(reason_name(static_cast<Reason>(i))).value(n);
      else
        text_ += "  denied " + std::string(reason_name(static_cast<Reason>(i))) + ": " +
                 std::to_string(n) + "\n";
    }
    if (json_) j_.end_object();
  }
  std::string finish() {
    if (json_) return j_.end_object().str();
    return text_;
  }

 private:
  bool json_;
  JsonWriter j_;
  std::string text_;
};

std::string render(const StatusSources& s, bool json) {
  StatusSink out(json);
  // Which daemon answers: only a mount that is really up can say its own pid.
  out.field("pid", static_cast<uint64_t>(getpid()));
  out.flag("verification", s.checker != nullptr);
  if (!s.kernel_cache.empty()) out.field("kernel_cache", s.kernel_cache);
  if (s.cache_invalidations) out.field("cache_invalidations", s.cache_invalidations->load());
  if (!s.nodes_kept_as.empty()) out.field("nodes_kept_as", s.nodes_kept_as);
  if (s.nodes) out.field("nodes", static_cast<uint64_t>(s.nodes->load()));
  if (s.node_fds) out.field("node_fds", static_cast<uint64_t>(s.node_fds->load()));
  if (s.warm_fds) out.field("warm_fds", static_cast<uint64_t>(s.warm_fds->load()));
  if (s.warm_verdicts) {
    out.field("warm_verdicts", static_cast<uint64_t>(s.warm_verdicts->load()));
  }
  if (s.log) out.field("suppressed_events", s.log->suppressed());
  if (s.checker) {
    auto index = s.checker->index();
    const CheckerCounters& c = s.checker->counters();
    out.field("mode", to_string(s.checker->policy().mode));
    out.field("generation", index->generation());
    out.field("packages_accepted", static_cast<uint64_t>(index->packages().size()));
    out.field("files_indexed", static_cast<uint64_t>(index->file_count()));
    out.rejected(index->rejected());
    out.field("opens", c.opens.load());
    out.field("memo_hits", c.memo_hits.load());
    out.field("memo_misses", c.memo_misses.load());
    out.field("bytes_hashed", c.bytes_hashed.load());
    out.field("hashing", c.hashing.load());
    out.field("denials", c.denials.load());
    out.denials(c);
    out.field("audits", c.audits.load());
    out.field("reload_waits", c.reload_waits.load());
    out.field("reload_wait_timeouts", c.reload_wait_timeouts.load());
    const BlockChecks& blocks = s.checker->block_checks();
    out.field("block_checks", blocks.on ? "on" : "off");
    if (blocks.on) {
      const TreeStats trees = s.checker->tree_stats();
      out.field("block_trees", trees.trees);
      out.field("block_tree_bytes", trees.bytes);
      out.field("block_tree_budget", static_cast<uint64_t>(blocks.memory_bytes));
      out.field("block_trees_dropped", trees.dropped);
      out.field("block_mismatches", c.block_mismatches.load());
    }
  }
  if (s.reloader) {
    out.field("database", s.reloader->database().string());
    ReloadStats r = s.reloader->stats();
    out.field("reloads", r.reloads);
    out.field("reload_failures", r.failures);
    out.field("last_reload_ms", static_cast<uint64_t>(r.last_seconds * 1000));
    out.field("last_reload_error", r.last_error);
  }
  if (s.primer) {
    PrimeProgress p = s.primer->progress();
    out.flag("prime_done", p.done);
    out.field("prime_total", p.total);
    out.field("prime_files", p.files);
    out.field("prime_bytes", p.bytes);
    out.field("prime_failures", p.failures);
    out.field("prime_ms", p.elapsed_ms);
  }
  if (s.measurements) {
    const Sha256 state = s.measurements->state();
    out.field("measurements", static_cast<uint64_t>(s.measurements->size()));
    out.field("state", to_hex(state.data(), state.size()));
    out.flag("log_in_step", s.measurements->in_step());
  }
  if (s.tpm) {
    out.flag("pcr_in_step", s.tpm->in_step());
    out.field("pcr_extends", s.tpm->extended());
  }
  return out.finish();
}

}  // namespace

std::string status_json(const StatusSources& s) { return render(s, true); }
std::string status_text(const StatusSources& s) { return render(s, false); }

}  // namespace digestfs
