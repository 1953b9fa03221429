// The one way every command turns Settings into a trust store and a digest index.
#pragma once

#include <memory>

#include "cache/digest_index.hpp"
#include "cache/trust_store.hpp"
#include "src/json.hpp"
#include "src/settings.hpp"

namespace digestfs {

struct TrustedIndex {
  std::shared_ptr<const TrustStore> trust;
  std::shared_ptr<const DigestIndex> index;
  double load_seconds = 0;
};

// With `previous` loaded from the same keys, unchanged database headers are reused from it.
Result<TrustedIndex> load_trusted_index(const Settings& settings, uint64_t generation = 1,
                                        const TrustedIndex* previous = nullptr);

// One rejected header as a JSON object: nevra, verdict, reason (and origin, when asked).
void rejected_json(JsonWriter& j, const RejectedHeader& r, bool with_origin);

// "c", "d", "g", ... as rpm prints file attributes (config, doc, ghost, license, missingok,
// noreplace, readme), for listings.
std::string attr_markers(uint16_t attrs);

}  // namespace digestfs
