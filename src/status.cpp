#include "src/status.hpp"

#include "src/json.hpp"

namespace digestfs {

std::string status_json(const IntegrityChecker* checker, const EventLog& log) {
  JsonWriter j;
  j.begin_object();
  j.key("verification").value(checker != nullptr);
  j.key("suppressed_events").value(log.suppressed());
  if (checker) {
    auto index = checker->index();
    const CheckerCounters& c = checker->counters();
    j.key("mode").value(to_string(checker->policy().mode));
    j.key("generation").value(index->generation());
    j.key("packages_accepted").value(static_cast<uint64_t>(index->packages().size()));
    j.key("files_indexed").value(static_cast<uint64_t>(index->file_count()));
    j.key("packages_rejected").begin_array();
    for (const auto& r : index->rejected()) {
      j.begin_object().key("nevra").value(r.nevra).key("verdict").value(verdict_name(r.verdict))
          .key("reason").value(r.reason).end_object();
    }
    j.end_array();
    j.key("opens").value(c.opens.load());
    j.key("memo_hits").value(c.memo_hits.load());
    j.key("memo_misses").value(c.memo_misses.load());
    j.key("bytes_hashed").value(c.bytes_hashed.load());
    j.key("denials").value(c.denials.load());
    j.key("audits").value(c.audits.load());
    j.key("denials_by_reason").begin_object();
    for (size_t i = 0; i < kReasonCount; ++i) {
      if (uint64_t n = c.denials_by_reason[i].load()) {
        j.key(reason_name(static_cast<Reason>(i))).value(n);
      }
    }
    j.end_object();
  }
  j.end_object();
  return j.str();
}

}  // namespace digestfs
