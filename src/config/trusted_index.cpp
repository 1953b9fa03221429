#include "src/config/trusted_index.hpp"

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
  auto reuse = previous && same_keys(*previous->trust, *out.trust) ? previous->index : nullptr;
  auto index = load_digest_index(*out.trust, settings.sources, generation, reuse);
  if (!index) return index.error();
  out.index = std::move(index.value());
  out.load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace digestfs
