#include "cache/block_tree.hpp"

#include <algorithm>
#include <cstring>

#include "cache/file_hasher.hpp"

namespace digestfs {
namespace {

constexpr size_t kHashesPerBlock = BlockTree::kBlockSize / sizeof(Sha256);

// One level up: the hashes of `level` packed into zero-padded blocks, each block hashed.
std::optional<std::vector<Sha256>> level_above(const std::vector<Sha256>& level) {
  std::vector<Sha256> out;
  out.reserve((level.size() + kHashesPerBlock - 1) / kHashesPerBlock);
  std::array<unsigned char, BlockTree::kBlockSize> block;
  for (size_t i = 0; i < level.size(); i += kHashesPerBlock) {
    block.fill(0);
    const size_t n = std::min(kHashesPerBlock, level.size() - i);
    std::memcpy(block.data(), level[i].data(), n * sizeof(Sha256));
    auto hash = sha256_of(block.data(), block.size());
    if (!hash) return std::nullopt;
    out.push_back(*hash);
  }
  return out;
}

void put_le64(unsigned char* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(v >> (8 * i));
}

const Error kNoHash{ENOMEM, "a block hash could not be computed"};

}  // namespace

std::optional<Sha256> BlockTree::hash_of_block(std::span<const unsigned char> bytes) {
  if (bytes.size() == kBlockSize) return sha256_of(bytes.data(), bytes.size());
  std::array<unsigned char, kBlockSize> padded{};
  std::copy(bytes.begin(), bytes.end(), padded.begin());
  return sha256_of(padded.data(), padded.size());
}

void BlockTree::Builder::hash_block(const unsigned char* block) {
  auto hash = sha256_of(block, kBlockSize);
  failed_ |= !hash;
  leaves_.push_back(hash.value_or(Sha256{}));
}

void BlockTree::Builder::update(std::span<const unsigned char> data) {
  size_ += data.size();
  if (partial_size_ > 0) {
    const size_t take = std::min(kBlockSize - partial_size_, data.size());
    std::memcpy(partial_.data() + partial_size_, data.data(), take);
    partial_size_ += take;
    data = data.subspan(take);
    if (partial_size_ < kBlockSize) return;
    hash_block(partial_.data());
    partial_size_ = 0;
  }
  const size_t whole = data.size() / kBlockSize;
  leaves_.reserve(leaves_.size() + whole + 1);
  for (size_t i = 0; i < whole; ++i) hash_block(data.data() + i * kBlockSize);
  data = data.subspan(whole * kBlockSize);
  std::memcpy(partial_.data(), data.data(), data.size());
  partial_size_ = data.size();
}

Result<BlockTree> BlockTree::Builder::finish() {
  if (partial_size_ > 0) {
    std::memset(partial_.data() + partial_size_, 0, kBlockSize - partial_size_);
    hash_block(partial_.data());
    partial_size_ = 0;
  }
  if (failed_) return kNoHash;
  BlockTree tree;
  tree.size_ = size_;
  tree.leaves_ = std::move(leaves_);
  tree.leaves_.shrink_to_fit();
  // fs-verity: an empty file's root is all zeros; one block's root is that block's hash; else
  // levels are built until one block holds them all, and the root is that block's hash.
  if (tree.leaves_.size() == 1) {
    tree.root_ = tree.leaves_[0];
  } else if (tree.leaves_.size() > 1) {
    auto level = level_above(tree.leaves_);
    while (level && level->size() > 1) level = level_above(*level);
    if (!level) return kNoHash;
    tree.root_ = level->front();
  }
  return tree;
}

std::optional<Sha256> BlockTree::fsverity_digest() const {
  // struct fsverity_descriptor: version, hash algorithm (1: SHA-256), log2 of the block size,
  // salt size, 4 reserved bytes, le64 data size, 64 bytes of root hash, 32 of salt, 144
  // reserved.
  std::array<unsigned char, 256> descriptor{};
  descriptor[0] = 1;
  descriptor[1] = 1;
  descriptor[2] = 12;
  put_le64(descriptor.data() + 8, size_);
  std::copy(root_.begin(), root_.end(), descriptor.begin() + 16);
  return sha256_of(descriptor.data(), descriptor.size());
}

std::optional<uint64_t> BlockTree::first_mismatch(uint64_t offset,
                                                  std::span<const unsigned char> bytes) const {
  uint64_t block = offset / kBlockSize;
  for (size_t at = 0; at < bytes.size(); at += kBlockSize, ++block) {
    const auto piece = bytes.subspan(at, std::min(kBlockSize, bytes.size() - at));
    if (block >= leaves_.size()) return block;
    const size_t expected_size =
        block + 1 == leaves_.size() ? size_ - block * kBlockSize : kBlockSize;
    // A hash that cannot be computed is no match either.
    if (piece.size() != expected_size || hash_of_block(piece) != leaves_[block]) return block;
  }
  return std::nullopt;
}

}  // namespace digestfs
