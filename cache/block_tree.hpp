// BlockTree: fs-verity's Merkle tree over a file's content (4 KiB blocks, SHA-256, no salt):
// the hash of every block (the last one zero-padded) and the levels above them, 128 hashes to
// a block, up to one root. Built in the same read pass as the file's package digest; once that
// digest matched the signed one, the block hashes are trusted, and every block read later is
// checked against them: bytes changed beneath a verified file (a raw write to the device, a
// lying lower filesystem) are caught as they are read, whatever the inode's metadata says.
// The checks of reads go by a tag of each block made in the same pass (see BlockTagger): as
// trusted as the hashes, and a sixth of the cost.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "cache/block_tag.hpp"
#include "src/base/digest.hpp"
#include "src/base/result.hpp"

namespace digestfs {

class BlockTree {
 public:
  static constexpr size_t kBlockSize = 4096;

  // Takes the content in order, in pieces of any size.
  class Builder {
   public:
    // `beside`, what the caller does with the same bytes (hash_fd: the file's flat digest),
    // runs once meanwhile, on another core when the piece is large.
    void update(std::span<const unsigned char> data, const std::function<void()>& beside = {});
    // Fails when a hash or tag could not be computed (OpenSSL without memory, no random key):
    // no tree then.
    Result<BlockTree> finish();

   private:
    // Hashes and tags whole blocks from `data`, and runs `beside`: on two cores when there are
    // enough blocks to be worth it.
    void add_blocks(std::span<const unsigned char> data, const std::function<void()>& beside);
    // Of a block zero-padded to kBlockSize, `size` bytes are content.
    void add_block(const unsigned char* block, size_t size);
    // The hash of a whole (or zero-padded) block, and the tag of its content, at block `i`.
    void hash_into(size_t i, const unsigned char* block);
    void tag_into(size_t i, std::span<const unsigned char> content);
    BlockTagger tagger_;
    std::vector<Sha256> leaves_;
    std::vector<BlockTag> tags_;
    std::atomic<bool> failed_ = false;
    std::array<unsigned char, kBlockSize> partial_{};
    size_t partial_size_ = 0;
    uint64_t size_ = 0;
  };

  uint64_t data_size() const { return size_; }
  uint64_t blocks() const { return leaves_.size(); }
  const Sha256& block_hash(uint64_t block) const { return leaves_[block]; }
  // The tree's root hash (all zeros for an empty file), as fs-verity defines it.
  const Sha256& root_hash() const { return root_; }
  // What `fsverity digest` prints for the same bytes: SHA-256 of fs-verity's descriptor
  // (version 1, SHA-256, 4 KiB blocks, the size, the root hash, no salt).
  std::optional<Sha256> fsverity_digest() const;
  // Which block of `bytes` (content from `offset`, a multiple of kBlockSize) first differs
  // from the tree, counted from the start of the file; nothing when every block matches.
  // A short last piece matches only as the file's own last block.
  std::optional<uint64_t> first_mismatch(uint64_t offset,
                                         std::span<const unsigned char> bytes) const;
  // The hash fs-verity gives one block's content (zero-padded when short).
  static std::optional<Sha256> hash_of_block(std::span<const unsigned char> bytes);
  size_t memory_bytes() const {
    return sizeof(*this) + leaves_.capacity() * sizeof(Sha256) +
           tags_.capacity() * sizeof(BlockTag);
  }

 private:
  BlockTree() = default;
  uint64_t size_ = 0;
  BlockTagger tagger_;
  std::vector<Sha256> leaves_;
  std::vector<BlockTag> tags_;
  Sha256 root_{};
};

}  // namespace digestfs
