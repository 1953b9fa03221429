// Block trees: their fs-verity digests against `fsverity digest` (Debian's fsverity, the peer)
// for files at and around every size that changes the tree's shape, built the way the mount
// builds them (in hash_fd's pass); which block a changed read is caught at, in pieces of any
// size (large ones are hashed and tagged on several tasks); and what a block's tag binds.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "cache/block_tree.hpp"
#include "cache/file_hasher.hpp"
#include "src/base/hex.hpp"
#include "src/base/unique_fd.hpp"
#include "tests/support/files.hpp"
#include "tests/support/test_env.hpp"

namespace digestfs::test {
namespace {

constexpr size_t kBlock = BlockTree::kBlockSize;

std::string pattern(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>((i * 7919 + i / 4096) & 0xff);
  return s;
}

BlockTree tree_of_file(const std::filesystem::path& file) {
  UniqueFd fd(open(file.c_str(), O_RDONLY | O_CLOEXEC));
  BlockTree::Builder builder;
  auto hashed = hash_fd(fd.get(), digest_algo::kSha256, UINT64_MAX, &builder);
  EXPECT_TRUE(hashed.ok());
  auto tree = builder.finish();
  EXPECT_TRUE(tree.ok());
  return std::move(tree.value());
}

TEST(BlockTree, DigestsAreFsveritysForEveryShapeOfTree) {
  DIGESTFS_REQUIRE(run_shell("command -v fsverity >/dev/null") == 0, "fsverity (Debian package)");
  TempDir dir;
  // Empty; one short block; one block; just past it; a full first level (128 blocks); one block
  // more (two levels); 1 MiB + 1 (read in two pieces by the hasher); two levels full plus one.
  for (size_t size : {size_t{0}, size_t{1}, kBlock - 1, kBlock, kBlock + 1, 128 * kBlock,
                      128 * kBlock + 1, (size_t{1} << 20) + 1, 128 * 128 * kBlock + 1}) {
    const auto file = dir.path() / ("f" + std::to_string(size));
    ASSERT_TRUE(write_text(file, pattern(size)));
    const BlockTree tree = tree_of_file(file);
    EXPECT_EQ(tree.data_size(), size);
    const CommandOutput peer = run_captured("fsverity digest " + file.string());
    ASSERT_EQ(peer.status, 0) << peer.err;
    EXPECT_EQ("sha256:" + to_hex(*tree.fsverity_digest()) + " " + file.string() + "\n", peer.out)
        << size << " bytes";
  }
}

TEST(BlockTree, ARootIsZerosForNothingAndTheBlockHashForOneBlock) {
  BlockTree::Builder empty;
  EXPECT_EQ(empty.finish()->root_hash(), Sha256{});
  BlockTree::Builder one;
  const std::string bytes(100, 'a');
  one.update({reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()});
  const BlockTree tree = std::move(one.finish().value());
  EXPECT_EQ(tree.root_hash(),
            *BlockTree::hash_of_block(
                {reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()}));
}

TEST(BlockTree, AChangedReadIsCaughtAtItsBlock) {
  const std::string content = pattern(3 * kBlock + 100);
  BlockTree::Builder builder;
  // Fed in uneven pieces, as reads arrive.
  const auto* p = reinterpret_cast<const unsigned char*>(content.data());
  builder.update({p, 5000});
  builder.update({p + 5000, 7000});
  builder.update({p + 12000, content.size() - 12000});
  const BlockTree tree = std::move(builder.finish().value());
  std::vector<unsigned char> bytes(content.begin(), content.end());
  EXPECT_EQ(tree.first_mismatch(0, bytes), std::nullopt);
  EXPECT_EQ(tree.first_mismatch(kBlock, std::span(bytes).subspan(kBlock)), std::nullopt);
  bytes[2 * kBlock + 17] ^= 1;
  EXPECT_EQ(tree.first_mismatch(0, bytes), 2u);
  EXPECT_EQ(tree.first_mismatch(kBlock, std::span(bytes).subspan(kBlock)), 2u);
  bytes[2 * kBlock + 17] ^= 1;
  // The last block only as the file's own last block: short anywhere else, or longer, fails.
  EXPECT_EQ(tree.first_mismatch(0, std::span(bytes).first(2 * kBlock + 10)), 2u);
  bytes.push_back('x');
  EXPECT_EQ(tree.first_mismatch(0, bytes), 3u);
  bytes.resize(4 * kBlock + 1);
  EXPECT_EQ(tree.first_mismatch(3 * kBlock, std::span(bytes).subspan(3 * kBlock)), 3u);
}

TEST(BlockTree, EveryBlockOfALargePieceIsCheckedAtItsOwnPlace) {
  // 1 MiB + 1 in one piece: the hashes and tags of 256 blocks made side by side.
  const std::string content = pattern(256 * kBlock + 1);
  const auto* p = reinterpret_cast<const unsigned char*>(content.data());
  BlockTree::Builder whole;
  whole.update({p, content.size()});
  const BlockTree tree = std::move(whole.finish().value());
  BlockTree::Builder by_block;
  for (size_t at = 0; at < content.size(); at += kBlock) {
    by_block.update({p + at, std::min(kBlock, content.size() - at)});
  }
  EXPECT_EQ(tree.root_hash(), by_block.finish()->root_hash());
  std::vector<unsigned char> bytes(content.begin(), content.end());
  EXPECT_EQ(tree.first_mismatch(0, bytes), std::nullopt);
  for (const size_t block : {0u, 31u, 32u, 100u, 255u, 256u}) {
    bytes[block * kBlock] ^= 0x80;
    EXPECT_EQ(tree.first_mismatch(0, bytes), block);
    bytes[block * kBlock] ^= 0x80;
  }
  // Two blocks swapped: each is right in content, wrong in place.
  std::swap_ranges(bytes.begin() + 10 * kBlock, bytes.begin() + 11 * kBlock,
                   bytes.begin() + 11 * kBlock);
  EXPECT_EQ(tree.first_mismatch(0, bytes), 10u);
}

TEST(BlockTagger, ATagBindsTheContentItsLengthItsBlockAndItsTagger) {
  const std::string content = pattern(kBlock);
  const std::span<const unsigned char> block(reinterpret_cast<const unsigned char*>(content.data()),
                                             content.size());
  const BlockTagger one;
  const BlockTagger other;
  const auto tag = one.tag(7, block);
  ASSERT_TRUE(tag.has_value());
  EXPECT_EQ(one.tag(7, block), tag);
  EXPECT_TRUE(one.matches(7, block, *tag));
  BlockTag last_bit_off = *tag;
  last_bit_off.back() ^= 1;
  EXPECT_FALSE(one.matches(7, block, last_bit_off));
  EXPECT_FALSE(one.matches(8, block, *tag));
  EXPECT_NE(one.tag(8, block), tag);
  EXPECT_NE(other.tag(7, block), tag);
  EXPECT_NE(one.tag(7, block.first(kBlock - 1)), tag);
  std::string changed = content;
  changed[kBlock - 1] ^= 1;
  EXPECT_NE(one.tag(7, {reinterpret_cast<const unsigned char*>(changed.data()), changed.size()}),
            tag);
  // A short last block is tagged as it is: its zero padding is not part of it.
  std::string padded = content.substr(0, 100) + std::string(kBlock - 100, '\0');
  EXPECT_NE(one.tag(7, block.first(100)),
            one.tag(7, {reinterpret_cast<const unsigned char*>(padded.data()), padded.size()}));
}

}  // namespace
}  // namespace digestfs::test
