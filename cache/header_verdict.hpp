// The verdict on one RPM header: whether its signed digests may enter the trusted index.
#pragma once

#include <string>
#include <string_view>

namespace digestfs {

enum class HeaderVerdict {
  Accepted,      // header signature valid and made by a key of the trust store
  Unsigned,      // no header signature at all
  UntrustedKey,  // signed, but by a key the trust store does not hold
  BadSignature,  // the header signature does not verify
  Corrupted,     // a header or payload digest does not match
  Malformed,     // librpm cannot read it as a header or package
  WeakDigest,    // file digests are MD5 or SHA-1 and weak digests are not allowed
};

std::string_view verdict_name(HeaderVerdict verdict);

}  // namespace digestfs
