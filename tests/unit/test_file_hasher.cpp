// The hasher against known answers (FIPS 180 and RFC 1321 test vectors; the long inputs
// computed independently with Python's hashlib), across its chunk boundary, with a known size
// that ends a read early, on a read error, and from the page cache only.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "cache/file_hasher.hpp"
#include "src/base/hex.hpp"
#include "src/base/unique_fd.hpp"
#include "tests/support/files.hpp"
#include "tests/support/test_env.hpp"

namespace digestfs::test {
namespace {

class Hasher : public ::testing::Test {
 protected:
  // The hex digest of `bytes` in `algo`, hashed from a file (with its size known or not).
  std::string hash_of(const std::string& bytes, uint8_t algo, bool size_known = true) {
    const auto file = dir.path() / "f";
    EXPECT_TRUE(write_text(file, bytes));
    UniqueFd fd(open(file.c_str(), O_RDONLY | O_CLOEXEC));
    auto d = hash_fd(fd.get(), algo, size_known ? bytes.size() : UINT64_MAX);
    EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().message);
    if (!d) return {};
    EXPECT_EQ(d->bytes, bytes.size());
    EXPECT_EQ(d->digest.algo(), algo);
    return to_hex(d->digest.bytes());
  }
  TempDir dir;
};

TEST_F(Hasher, EveryAlgorithmGivesItsKnownAnswer) {
  EXPECT_EQ(hash_of("abc", digest_algo::kMd5), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(hash_of("abc", digest_algo::kSha1), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(hash_of("abc", digest_algo::kSha224),
            "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7");
  EXPECT_EQ(hash_of("abc", digest_algo::kSha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hash_of("abc", digest_algo::kSha384),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc23"
            "58baeca134c825a7");
  EXPECT_EQ(hash_of("abc", digest_algo::kSha512),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a8"
            "36ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

TEST_F(Hasher, EmptyFilesAndChunkBoundaries) {
  EXPECT_EQ(hash_of("", digest_algo::kSha256),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // The hasher reads 1 MiB at a time: exactly one chunk, and one byte past it.
  const std::string mib(1 << 20, 'a');
  for (bool known : {true, false}) {
    EXPECT_EQ(hash_of(mib, digest_algo::kSha256, known),
              "9bc1b2a288b26af7257a36277ae3816a7d4f16e89c1e7e77d0a5c48bad62b360");
    EXPECT_EQ(hash_of(mib + "b", digest_algo::kSha256, known),
              "371264331be3a89bb42c4fea3770469e9094f6ce8c8244b9ac2beb9ffd80e621");
  }
}

TEST_F(Hasher, AStreamAgreesWithTheFileHash) {
  auto stream = DigestStream::start(digest_algo::kSha256);
  ASSERT_TRUE(stream.ok());
  stream->update("a", 1);
  stream->update("bc", 2);
  EXPECT_EQ(stream->finish()->text(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(*sha256_of("abc", 3)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(Hasher, UnknownAlgorithmsAndReadErrorsAreErrors) {
  const auto file = dir.path() / "f";
  ASSERT_TRUE(write_text(file, "abc"));
  UniqueFd fd(open(file.c_str(), O_RDONLY | O_CLOEXEC));
  auto unknown = hash_fd(fd.get(), 3);  // rpm's RIPEMD-160: never a file digest here
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ENOTSUP);
  UniqueFd dir_fd(open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto unreadable = hash_fd(dir_fd.get(), digest_algo::kSha256);
  ASSERT_FALSE(unreadable.ok());
  EXPECT_EQ(unreadable.error().code, EISDIR);
}

// Cached only: the same digest from the page cache; a file not in it fails with EWOULDBLOCK
// (nothing waits on the disk), and is hashed as ever without the flag.
TEST_F(Hasher, CachedOnlyReadsNothingFromTheDisk) {
  const auto file = dir.path() / "f";
  const std::string bytes(100000, 'c');
  ASSERT_TRUE(write_text(file, bytes));
  UniqueFd fd(open(file.c_str(), O_RDONLY | O_CLOEXEC));
  auto cached = hash_fd(fd.get(), digest_algo::kSha256, bytes.size(), nullptr, true);
  ASSERT_TRUE(cached.ok()) << cached.error().message;
  EXPECT_EQ(to_hex(cached->digest.bytes()), sha256_hex(bytes));
  ASSERT_TRUE(drop_from_page_cache(file));
  auto uncached = hash_fd(fd.get(), digest_algo::kSha256, bytes.size(), nullptr, true);
  ASSERT_FALSE(uncached.ok());
  EXPECT_EQ(uncached.error().code, EWOULDBLOCK);
  auto read = hash_fd(fd.get(), digest_algo::kSha256, bytes.size());
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->digest, cached->digest);
}

}  // namespace
}  // namespace digestfs::test
