#include "cache/block_tree.hpp"

#include <tbb/parallel_invoke.h>

#include <algorithm>
#include <cstring>

#include "cache/file_hasher.hpp"

namespace digestfs {
namespace {

constexpr size_t kHashesPerBlock = BlockTree::kBlockSize / sizeof(Sha256);
// From this many blocks in one piece (256 KiB), the work on them takes two cores; tags are
// taken 16 blocks at a time.
constexpr size_t kBesideFrom = 64;
constexpr size_t kTagsTaken = 16;

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

const Error kNoHash{ENOMEM, "a block hash or tag could not be computed"};

}  // namespace

std::optional<Sha256> BlockTree::hash_of_block(std::span<const unsigned char> bytes) {
  if (bytes.size() == kBlockSize) return sha256_of(bytes.data(), bytes.size());
  std::array<unsigned char, kBlockSize> padded{};
  std::copy(bytes.begin(), bytes.end(), padded.begin());
  return sha256_of(padded.data(), padded.size());
}

void BlockTree::Builder::hash_into(size_t i, const unsigned char* block) {
  const auto hash = sha256_of(block, kBlockSize);
  if (!hash) failed_ = true;
  leaves_[i] = hash.value_or(Sha256{});
}

void BlockTree::Builder::tag_into(size_t i, std::span<const unsigned char> content) {
  const auto tag = tagger_.tag(i, content);
  if (!tag) failed_ = true;
  tags_[i] = tag.value_or(BlockTag{});
}

void BlockTree::Builder::add_block(const unsigned char* block, size_t size) {
  const size_t i = leaves_.size();
  leaves_.resize(i + 1);
  tags_.resize(i + 1);
  hash_into(i, block);
  tag_into(i, {block, size});
}

void BlockTree::Builder::add_blocks(std::span<const unsigned char> data,
                                    const std::function<void()>& beside) {
  const size_t first = leaves_.size();
  const size_t count = data.size() / kBlockSize;
  leaves_.resize(first + count);
  tags_.resize(first + count);
  const auto hash = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) hash_into(first + i, data.data() + i * kBlockSize);
  };
  const auto tag = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      tag_into(first + i, data.subspan(i * kBlockSize, kBlockSize));
    }
  };
  if (count < kBesideFrom) {
    if (beside) beside();
    hash(0, count);
    tag(0, count);
    return;
  }
  // Two tasks: what the caller does beside with the bytes (the file's flat digest, about as
  // long as the hashes), and the hashes; each then takes tags, a few blocks at a time, until
  // none are left, so that the core done first makes more of them.
  std::atomic<size_t> untagged{0};
  const auto take_tags = [&] {
    for (size_t from; (from = untagged.fetch_add(kTagsTaken)) < count;) {
      tag(from, std::min(count, from + kTagsTaken));
    }
  };
  tbb::parallel_invoke(
      [&] {
        if (beside) beside();
        take_tags();
      },
      [&] {
        hash(0, count);
        take_tags();
      });
}

void BlockTree::Builder::update(std::span<const unsigned char> data,
                                const std::function<void()>& beside) {
  size_ += data.size();
  if (partial_size_ > 0) {
    const size_t take = std::min(kBlockSize - partial_size_, data.size());
    std::memcpy(partial_.data() + partial_size_, data.data(), take);
    partial_size_ += take;
    data = data.subspan(take);
    if (partial_size_ < kBlockSize) {
      if (beside) beside();
      return;
    }
    add_block(partial_.data(), kBlockSize);
    partial_size_ = 0;
  }
  const size_t whole = data.size() / kBlockSize * kBlockSize;
  add_blocks(data.first(whole), beside);
  data = data.subspan(whole);
  std::memcpy(partial_.data(), data.data(), data.size());
  partial_size_ = data.size();
}

Result<BlockTree> BlockTree::Builder::finish() {
  if (partial_size_ > 0) {
    std::memset(partial_.data() + partial_size_, 0, kBlockSize - partial_size_);
    add_block(partial_.data(), partial_size_);
    partial_size_ = 0;
  }
  if (failed_) return kNoHash;
  BlockTree tree;
  tree.size_ = size_;
  tree.tagger_ = tagger_;
  tree.leaves_ = std::move(leaves_);
  tree.leaves_.shrink_to_fit();
  tree.tags_ = std::move(tags_);
  tree.tags_.shrink_to_fit();
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
    // A tag that cannot be computed is no match either.
    if (piece.size() != expected_size || !tagger_.matches(block, piece, tags_[block])) return block;
  }
  return std::nullopt;
}

}  // namespace digestfs
