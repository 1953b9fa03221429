// Hashes the content of an open file with OpenSSL EVP, in the algorithm an entry names.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cache/block_tree.hpp"
#include "src/base/digest.hpp"
#include "src/base/result.hpp"

struct evp_md_ctx_st;

namespace digestfs {

struct ContentDigest {
  Digest digest;
  uint64_t bytes = 0;  // how many bytes were hashed
};

// An incremental digest in one of rpm's algorithms, through OpenSSL EVP.
class DigestStream {
 public:
  static Result<DigestStream> start(uint8_t algo);
  void update(const void* data, size_t size);
  Result<Digest> finish();  // the stream is done after this; an update that failed fails it

 private:
  struct CtxFree {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, CtxFree> ctx_;
  uint8_t algo_ = 0;
  bool failed_ = false;
};

// Reads fd from offset 0 to its end with pread (the file offset is left alone), with a
// digest context kept per thread. When `known_size` is given (a regular file's size from a
// fresh fstat), a short read that ends exactly there is taken as the end: one read fewer
// per small file. A file that grew since is hashed to its old size, as when read before.
// With `tree`, the block tree of the very same bytes is built in the same pass (its block
// hashes on a second core, for large reads). With `cached_only`, bytes are read only from the
// page cache (RWF_NOWAIT): nothing waits on a disk, and a byte not cached (or a filesystem
// that cannot tell) fails the hash with EWOULDBLOCK, which says nothing of the file.
Result<ContentDigest> hash_fd(int fd, uint8_t algo, uint64_t known_size = UINT64_MAX,
                              BlockTree::Builder* tree = nullptr, bool cached_only = false);

// SHA-256 of a buffer, with a context kept per thread: no allocation per call. Nothing when
// OpenSSL fails (it has no memory, or no SHA-256).
std::optional<Sha256> sha256_of(const void* data, size_t size);

}  // namespace digestfs
