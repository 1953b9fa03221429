// HeaderVerifier: judges an exported header blob with librpm's headerCheck against the trust
// store's keyring. One per thread: a transaction set is not safe to share.
#pragma once

#include <cstddef>
#include <string>

#include "cache/header_verdict.hpp"
#include "cache/rpm_handles.hpp"

namespace digestfs {

struct HeaderAssessment {
  HeaderVerdict verdict = HeaderVerdict::Malformed;
  std::string reason;  // librpm's words for what failed; empty when accepted
  std::string signer;  // key id of the header signature, when the header has one
};

class HeaderVerifier {
 public:
  explicit HeaderVerifier(rpmKeyring keyring);

  // Whether the header carries a signature, and its key id: read from the header as librpm
  // read it (the signature tags sit outside the signed region) before the check proper.
  struct Signature {
    bool present = false;
    std::string key_id;
  };
  static Signature signature_of(Header header);

  // blob is the header as headerExport writes it (immutable region plus signature tags).
  // Reads only the blob: it may run while another thread reads the header's signed region.
  HeaderAssessment assess(const void* blob, size_t size, const Signature& signature) const;

 private:
  rpm::TsPtr digests_only_;  // tells a damaged header from a bad or foreign signature
  rpm::TsPtr with_signatures_;
};

}  // namespace digestfs
