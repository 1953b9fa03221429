// The one way every command turns Settings into a trust store and a digest index.
#pragma once

#include <memory>

#include "cache/digest_index.hpp"
#include "cache/trust_store.hpp"
#include "src/config/settings.hpp"

namespace digestfs {

struct TrustedIndex {
  std::shared_ptr<const TrustStore> trust;
  std::shared_ptr<const DigestIndex> index;
  double load_seconds = 0;
};

// With `previous` loaded from the same keys, unchanged database headers are reused from it.
Result<TrustedIndex> load_trusted_index(const Settings& settings, uint64_t generation = 1,
                                        const TrustedIndex* previous = nullptr);

}  // namespace digestfs
