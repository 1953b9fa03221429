#include "cache/block_tag.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <atomic>
#include <memory>
#include <mutex>

namespace digestfs {
namespace {

// The 12-byte nonce: the tagger's prefix, then the block number, both little-endian.
constexpr int kPrefixBytes = 5;
constexpr int kBlockBytes = 12 - kPrefixBytes;

struct Key {
  std::array<unsigned char, 32> bytes{};
  bool made = false;
};

const Key& process_key() {
  static Key key;
  static std::once_flag once;
  std::call_once(once, [] { key.made = RAND_priv_bytes(key.bytes.data(), key.bytes.size()) == 1; });
  return key;
}

struct CipherFree {
  void operator()(EVP_CIPHER* c) const { EVP_CIPHER_free(c); }
};
struct CtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};

// A context per thread keyed once; each tag then only sets its nonce (no key schedule, no
// allocation per block). Null when OpenSSL or the key failed.
EVP_CIPHER_CTX* keyed_context() {
  thread_local std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx = [] {
    std::unique_ptr<EVP_CIPHER_CTX, CtxFree> made(EVP_CIPHER_CTX_new());
    const std::unique_ptr<EVP_CIPHER, CipherFree> gcm(
        EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr));
    const Key& key = process_key();
    if (!made || !gcm || !key.made ||
        EVP_EncryptInit_ex2(made.get(), gcm.get(), key.bytes.data(), nullptr, nullptr) != 1) {
      made.reset();
    }
    return made;
  }();
  return ctx.get();
}

std::atomic<uint64_t> next_prefix{0};

}  // namespace

BlockTagger::BlockTagger() : prefix_(next_prefix.fetch_add(1, std::memory_order_relaxed)) {}

std::optional<BlockTag> BlockTagger::tag(uint64_t block,
                                         std::span<const unsigned char> bytes) const {
  EVP_CIPHER_CTX* ctx = keyed_context();
  // Past either field a nonce could repeat: no tag, so no match (2^40 files verified in one
  // daemon's life, or a file of 2^68 bytes).
  if (!ctx || prefix_ >> (8 * kPrefixBytes) || block >> (8 * kBlockBytes)) return std::nullopt;
  std::array<unsigned char, kPrefixBytes + kBlockBytes> nonce;
  for (int i = 0; i < kPrefixBytes; ++i) nonce[i] = static_cast<unsigned char>(prefix_ >> (8 * i));
  for (int i = 0; i < kBlockBytes; ++i) {
    nonce[kPrefixBytes + i] = static_cast<unsigned char>(block >> (8 * i));
  }
  // GMAC: GCM over no plaintext, the block as authenticated data.
  int len = 0;
  unsigned char none[16];
  BlockTag out;
  if (EVP_EncryptInit_ex2(ctx, nullptr, nullptr, nonce.data(), nullptr) != 1 ||
      EVP_EncryptUpdate(ctx, nullptr, &len, bytes.data(), static_cast<int>(bytes.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx, none, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(out.size()), out.data()) !=
          1) {
    return std::nullopt;
  }
  return out;
}

bool BlockTagger::matches(uint64_t block, std::span<const unsigned char> bytes,
                          const BlockTag& expected) const {
  const auto actual = tag(block, bytes);
  return actual && CRYPTO_memcmp(actual->data(), expected.data(), expected.size()) == 0;
}

}  // namespace digestfs
