#include "src/base/digest.hpp"

#include <algorithm>

#include "src/base/hex.hpp"

namespace digestfs {

namespace digest_algo {
std::string_view name(uint8_t algo) {
  switch (algo) {
    case kMd5: return "md5";
    case kSha1: return "sha1";
    case kSha256: return "sha256";
    case kSha384: return "sha384";
    case kSha512: return "sha512";
    case kSha224: return "sha224";
  }
  return "unknown";
}
bool is_weak(uint8_t algo) { return algo == kMd5 || algo == kSha1; }
}  // namespace digest_algo

std::string DigestView::text() const {
  return std::string(digest_algo::name(algo)) + ":" + to_hex(bytes);
}

bool operator==(DigestView a, DigestView b) {
  return a.algo == b.algo &&
         std::equal(a.bytes.begin(), a.bytes.end(), b.bytes.begin(), b.bytes.end());
}

Digest::Digest(uint8_t algo, std::span<const unsigned char> bytes) : algo_(algo) {
  if (bytes.size() > kMaxSize) return;
  size_ = static_cast<uint8_t>(bytes.size());
  std::copy(bytes.begin(), bytes.end(), bytes_.begin());
}

}  // namespace digestfs
