#include "src/trusted_index.hpp"

#include <rpm/rpmfiles.h>

#include <chrono>

#include "cache/index_loader.hpp"

namespace digestfs {

namespace {

bool same_keys(const TrustStore& a, const TrustStore& b) {
  if (a.keys().size() != b.keys().size()) return false;
  for (size_t i = 0; i < a.keys().size(); ++i) {
    if (a.keys()[i].key_id != b.keys()[i].key_id) return false;
  }
  return true;
}

}  // namespace

Result<TrustedIndex> load_trusted_index(const Settings& settings, uint64_t generation,
                                        const TrustedIndex* previous) {
  auto start = std::chrono::steady_clock::now();
  auto trust = TrustStore::load(settings.keys);
  if (!trust) return trust.error();
  TrustedIndex out;
  out.trust = std::make_shared<const TrustStore>(std::move(trust.value()));
  // A changed trust store changes verdicts: then every header is judged again.
  const DigestIndex* reuse =
      previous && same_keys(*previous->trust, *out.trust) ? previous->index.get() : nullptr;
  auto index = load_digest_index(*out.trust, settings.sources, generation, reuse);
  if (!index) return index.error();
  out.index = std::move(index.value());
  out.load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

void rejected_json(JsonWriter& j, const RejectedHeader& r, bool with_origin) {
  j.begin_object().key("nevra").value(r.nevra).key("verdict").value(verdict_name(r.verdict));
  if (with_origin) j.key("origin").value(r.origin);
  j.key("reason").value(r.reason).end_object();
}

std::string attr_markers(uint16_t attrs) {
  std::string out;
  if (attrs & RPMFILE_CONFIG) out += 'c';
  if (attrs & RPMFILE_DOC) out += 'd';
  if (attrs & RPMFILE_GHOST) out += 'g';
  if (attrs & RPMFILE_LICENSE) out += 'l';
  if (attrs & RPMFILE_MISSINGOK) out += 'm';
  if (attrs & RPMFILE_NOREPLACE) out += 'n';
  if (attrs & RPMFILE_README) out += 'r';
  return out;
}

}  // namespace digestfs
