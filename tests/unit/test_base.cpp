// The base layer: hex both ways, the one digest comparison, the JSON writer, the buffers
// lent for reads and hashing.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

#include "src/base/buffer_pool.hpp"
#include "src/base/digest.hpp"
#include "src/base/hex.hpp"
#include "src/base/json_writer.hpp"

namespace digestfs::test {
namespace {

TEST(AlignedBuffer, IsAlignedForDirectIoAndKeptForSmallerRequests) {
  AlignedBuffer buffer;
  unsigned char* data = buffer.get((1 << 20) - 1);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(data) % AlignedBuffer::kAlignment, 0u);
  EXPECT_EQ(buffer.capacity(), size_t{1} << 20);
  EXPECT_EQ(buffer.get(4096), data) << "a smaller request must reuse the buffer";
  AlignedBuffer moved = std::move(buffer);
  EXPECT_EQ(moved.get(4096), data);
  EXPECT_EQ(buffer.capacity(), 0u) << "a moved-from buffer holds nothing";
  EXPECT_NE(buffer.get(4096), nullptr);
}

TEST(BufferPool, KeepsAtMostItsBoundAndLendsWhatItKeptAgain) {
  BufferPool pool(2);
  std::set<unsigned char*> lent;
  {
    std::vector<BufferPool::Lease> leases;
    for (int i = 0; i < 3; ++i) {
      leases.push_back(pool.lend());
      unsigned char* data = leases.back().get(1 << 20);
      std::memset(data, i, 1 << 20);
      lent.insert(data);
    }
    EXPECT_EQ(lent.size(), 3u) << "buffers lent at once must be distinct";
    EXPECT_EQ(pool.idle(), 0u);
  }
  EXPECT_EQ(pool.idle(), 2u) << "the third buffer given back is beyond the bound";
  auto again = pool.lend();
  EXPECT_TRUE(lent.count(again.get(1 << 20))) << "a kept buffer is lent again";
  EXPECT_EQ(pool.idle(), 1u);
}

TEST(BufferPool, KeepsNoBufferThatWasNeverUsed) {
  BufferPool pool(4);
  { auto unused = pool.lend(); }
  EXPECT_EQ(pool.idle(), 0u);
  {
    auto lease = pool.lend();
    auto moved = std::move(lease);
    moved.get(4096);
  }
  EXPECT_EQ(pool.idle(), 1u) << "a moved lease gives its buffer back once";
}

TEST(Hex, RoundTripsAndRefusesWhatIsNotHex) {
  const unsigned char bytes[] = {0x00, 0x7f, 0x80, 0xff};
  EXPECT_EQ(to_hex(bytes, sizeof bytes), "007f80ff");
  EXPECT_EQ(from_hex("007F80ff"), std::string("\x00\x7f\x80\xff", 4));
  EXPECT_EQ(from_hex(""), std::string());
  EXPECT_FALSE(from_hex("abc").has_value()) << "odd length";
  EXPECT_FALSE(from_hex("zz").has_value());
}

TEST(Digests, AreEqualOnlyWithTheSameAlgorithmAndBytes) {
  const unsigned char a[] = {1, 2, 3}, b[] = {1, 2, 4};
  const Digest sha256(digest_algo::kSha256, a);
  EXPECT_TRUE(sha256.view() == (DigestView{digest_algo::kSha256, a}));
  EXPECT_FALSE(sha256.view() == (DigestView{digest_algo::kSha256, b}));
  EXPECT_FALSE(sha256.view() == (DigestView{digest_algo::kSha512, a}));
  EXPECT_FALSE(sha256.view() == (DigestView{digest_algo::kSha256, {a, 2}})) << "a prefix";
  EXPECT_EQ(sha256.text(), "sha256:010203");
  EXPECT_TRUE(Digest().empty());
  const unsigned char too_long[Digest::kMaxSize + 1] = {};
  EXPECT_TRUE(Digest(digest_algo::kSha512, too_long).empty());
}

TEST(JsonWriter, WritesNestedValuesAndEscapesStrings) {
  JsonWriter j;
  j.begin_object()
      .key("s")
      .value("a\"b\\c\n\x01")
      .key("n")
      .value(uint64_t{18446744073709551615u})
      .key("i")
      .value(-3)
      .key("b")
      .value(true)
      .key("list")
      .begin_array()
      .value(1)
      .begin_object()
      .end_object()
      .begin_array()
      .end_array()
      .end_array()
      .end_object();
  EXPECT_EQ(j.str(), R"({"s":"a\"b\\c\n\u0001","n":18446744073709551615,"i":-3,"b":true,)"
                     R"("list":[1,{},[]]})");
}

}  // namespace
}  // namespace digestfs::test
