// File digests as packages sign them: an algorithm in rpm's numbering and the digest's bytes.
// DigestView points at bytes held elsewhere (the index's arena, a hash just computed); Digest
// holds its own. Two digests are compared in one place only: operator== on views.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace digestfs {

using Sha1 = std::array<unsigned char, 20>;
using Sha256 = std::array<unsigned char, 32>;

// rpm's numbering of hash algorithms (PGPHASHALGO_*), as FILEDIGESTALGO stores them.
namespace digest_algo {
constexpr uint8_t kMd5 = 1, kSha1 = 2, kSha256 = 8, kSha384 = 9, kSha512 = 10, kSha224 = 11;
std::string_view name(uint8_t algo);  // "sha256", or "unknown"
bool is_weak(uint8_t algo);           // MD5 and SHA-1: collisions are practical
}  // namespace digest_algo

struct DigestView {
  uint8_t algo = 0;
  std::span<const unsigned char> bytes;

  bool empty() const { return bytes.empty(); }
  // "sha256:0123...", as logs and listings print a digest.
  std::string text() const;
};

// Same algorithm, same bytes.
bool operator==(DigestView a, DigestView b);

class Digest {
 public:
  static constexpr size_t kMaxSize = 64;  // SHA-512

  Digest() = default;
  // bytes beyond kMaxSize are not a digest of any algorithm here: such a digest is empty.
  Digest(uint8_t algo, std::span<const unsigned char> bytes);

  DigestView view() const { return {algo_, {bytes_.data(), size_}}; }
  uint8_t algo() const { return algo_; }
  std::span<const unsigned char> bytes() const { return {bytes_.data(), size_}; }
  bool empty() const { return size_ == 0; }
  std::string text() const { return view().text(); }
  bool operator==(const Digest& other) const { return view() == other.view(); }

 private:
  uint8_t algo_ = 0;
  uint8_t size_ = 0;
  std::array<unsigned char, kMaxSize> bytes_{};
};

}  // namespace digestfs
