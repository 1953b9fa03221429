// BlockTagger: what a read is checked against once its file was verified. The block tree's
// SHA-256 hashes are trusted from the verified pass, but a hash per 4 KiB read costs as much
// CPU as the whole FUSE read path; a MAC of each block, made in that same pass, is trusted as
// far and costs a sixth (AES-256-GMAC, AES-NI and carry-less multiply: 0.11 s per GiB against
// SHA-256's 0.60 s on this project's machines).
//
// Why a MAC may stand in for the hash: its key is made at random when the daemon starts and
// never leaves its memory (no file, log or reply holds it or a tag), so whoever writes the
// disk sees no tag and can only try contents and watch reads fail. GMAC's forgery chance per
// try is under 2^-119 for a 4 KiB block (GHASH's degree over 2^128). Each tagger has a nonce
// prefix of its own, so no (key, nonce) pair ever tags two contents, which GMAC requires.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

namespace digestfs {

using BlockTag = std::array<unsigned char, 16>;

class BlockTagger {
 public:
  // A tagger with the next nonce prefix of the process.
  BlockTagger();

  // The tag of block number `block` holding `bytes` (the last block of a file may be short:
  // its length is part of what is tagged). Nothing when OpenSSL fails or no key could be made:
  // a block without a tag matches nothing.
  std::optional<BlockTag> tag(uint64_t block, std::span<const unsigned char> bytes) const;
  // Whether `bytes` have the tag `expected` as block number `block`, compared in constant time
  // (how long a refusal takes must not tell how much of a forged tag was right).
  bool matches(uint64_t block, std::span<const unsigned char> bytes,
               const BlockTag& expected) const;

 private:
  uint64_t prefix_;  // the nonce's first 40 bits; the block number is the other 56
};

}  // namespace digestfs
