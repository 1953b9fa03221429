#include "cache/header_verifier.hpp"

#include <rpm/rpmlib.h>
#include <rpm/rpmtd.h>

#include "cache/rpm_library.hpp"
#include "src/base/hex.hpp"

namespace digestfs {
namespace {

// Only header-region checks: payload flags are irrelevant to headerCheck, and a header
// signature is the one thing that makes an installed header trustworthy.
constexpr rpmVSFlags kHeaderChecks = RPMVSF_MASK_NOPAYLOAD;

struct CheckOutcome {
  rpmRC rc;
  std::string message;
};

CheckOutcome run_header_check(rpmts ts, const void* blob, size_t size) {
  char* raw = nullptr;
  rpmRC rc = headerCheck(ts, blob, size, &raw);
  rpm::Malloced<char> msg(raw);
  return {rc, msg ? msg.get() : ""};
}

// librpm reports one line per digest and signature; keep the ones that did not pass.
std::string failed_lines(const std::string& message) {
  std::string out;
  size_t start = 0;
  while (start <= message.size()) {
    size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    std::string line = message.substr(start, end - start);
    while (!line.empty() && line.front() == ' ') line.erase(0, 1);
    if (!line.empty() && !line.ends_with(": OK") && line != "Header sanity check: OK") {
      if (!out.empty()) out += "; ";
      out += line;
    }
    start = end + 1;
  }
  return out.empty() ? message : out;
}

}  // namespace

std::string_view verdict_name(HeaderVerdict verdict) {
  switch (verdict) {
    case HeaderVerdict::Accepted: return "accepted";
    case HeaderVerdict::Unsigned: return "unsigned";
    case HeaderVerdict::UntrustedKey: return "untrusted-key";
    case HeaderVerdict::BadSignature: return "bad-signature";
    case HeaderVerdict::Corrupted: return "corrupted";
    case HeaderVerdict::Malformed: return "malformed";
    case HeaderVerdict::WeakDigest: return "weak-digest";
  }
  return "unknown";
}

HeaderVerifier::HeaderVerifier(rpmKeyring keyring)
    : digests_only_(rpm::make_ts(keyring, kHeaderChecks | RPMVSF_MASK_NOSIGNATURES)),
      with_signatures_(rpm::make_ts(keyring, kHeaderChecks)) {}

HeaderVerifier::Signature HeaderVerifier::signature_of(Header header) {
  Signature out;
  for (rpmTagVal tag : {RPMTAG_RSAHEADER, RPMTAG_DSAHEADER}) {
    struct rpmtd_s td;
    if (!headerGet(header, tag, &td, HEADERGET_MINMEM)) continue;
    out.present = true;
    pgpDigParams raw = nullptr;
    if (pgpPrtParams(static_cast<const uint8_t*>(td.data), td.count, PGPTAG_SIGNATURE, &raw) == 0) {
      rpm::DigParamsPtr params(raw);
      out.key_id = to_hex(pgpDigParamsSignID(params.get()), 8);
    }
    rpmtdFreeData(&td);
    break;
  }
  return out;
}

HeaderAssessment HeaderVerifier::assess(const void* blob, size_t size,
                                        const Signature& found) const {
  HeaderAssessment out;
  const bool signed_header = found.present;
  out.signer = found.key_id;
  // The usual case costs one check of digests and signature together; only a failure is
  // checked again, digests alone, to tell a damaged header from a bad or foreign signature.
  CheckOutcome signature{RPMRC_FAIL, ""};
  if (signed_header) {
    signature = run_header_check(with_signatures_.get(), blob, size);
    if (signature.rc == RPMRC_OK) {
      out.verdict = HeaderVerdict::Accepted;
      return out;
    }
  }
  auto digests = run_header_check(digests_only_.get(), blob, size);
  if (digests.rc != RPMRC_OK) {
    out.verdict = HeaderVerdict::Corrupted;
    out.reason = failed_lines(digests.message);
    return out;
  }
  if (!signed_header) {
    out.verdict = HeaderVerdict::Unsigned;
    out.reason = "header has no signature";
    return out;
  }
  out.verdict = signature.rc == RPMRC_NOKEY || signature.rc == RPMRC_NOTTRUSTED
                    ? HeaderVerdict::UntrustedKey
                    : HeaderVerdict::BadSignature;
  out.reason = failed_lines(signature.message);
  return out;
}

}  // namespace digestfs
