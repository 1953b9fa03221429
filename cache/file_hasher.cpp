#include "cache/file_hasher.hpp"

#include <openssl/evp.h>
#include <sys/uio.h>
#include <tbb/task_arena.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "src/base/buffer_pool.hpp"

namespace digestfs {
namespace {

struct MdFree {
  void operator()(EVP_MD* md) const { EVP_MD_free(md); }
};
struct CtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};  // for the per-thread context

const char* openssl_name(uint8_t algo) {
  switch (algo) {
    case digest_algo::kMd5: return "MD5";
    case digest_algo::kSha1: return "SHA1";
    case digest_algo::kSha256: return "SHA256";
    case digest_algo::kSha384: return "SHA384";
    case digest_algo::kSha512: return "SHA512";
    case digest_algo::kSha224: return "SHA224";
  }
  return nullptr;
}

// Fetching an EVP_MD costs a provider lookup: do it once per algorithm for the process.
const EVP_MD* fetched(uint8_t algo) {
  static std::array<std::unique_ptr<EVP_MD, MdFree>, 256> table;
  static std::array<std::once_flag, 256> once;
  std::call_once(once[algo], [algo] {
    if (const char* name = openssl_name(algo))
      table[algo].reset(EVP_MD_fetch(nullptr, name, nullptr));
  });
  return table[algo].get();
}

constexpr size_t kChunk = 1 << 20;

// A digest context per thread and use, started afresh each time: no allocation per file.
// Files and buffers have one each: a buffer's hash (a block of a tree) may run on the thread
// whose file hash is under way.
EVP_MD_CTX* file_context() {
  thread_local std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
  return ctx.get();
}
EVP_MD_CTX* buffer_context() {
  thread_local std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
  return ctx.get();
}

// Starts `ctx` on `algo`: every digest, streamed or of a whole file, begins here.
Result<void> start_digest(EVP_MD_CTX* ctx, uint8_t algo) {
  const EVP_MD* md = fetched(algo);
  if (!md) {
    return Error{ENOTSUP,
                 "digest algorithm " + std::string(digest_algo::name(algo)) + " is not available"};
  }
  if (!ctx || EVP_DigestInit_ex2(ctx, md, nullptr) != 1) {
    return Error{ENOMEM, "cannot start a digest context"};
  }
  return {};
}

Result<Digest> finish_digest(EVP_MD_CTX* ctx, uint8_t algo) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx, digest, &len) != 1)
    return Error{EIO, "the digest cannot be finished"};
  return Digest(algo, {digest, len});
}

const Error kUpdateFailed{EIO, "the digest cannot take more input"};

}  // namespace

void DigestStream::CtxFree::operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }

Result<DigestStream> DigestStream::start(uint8_t algo) {
  DigestStream s;
  s.algo_ = algo;
  s.ctx_.reset(EVP_MD_CTX_new());
  if (auto started = start_digest(s.ctx_.get(), algo); !started) return started.error();
  return s;
}

void DigestStream::update(const void* data, size_t size) {
  failed_ |= EVP_DigestUpdate(ctx_.get(), data, size) != 1;
}

Result<Digest> DigestStream::finish() {
  if (failed_) return kUpdateFailed;
  return finish_digest(ctx_.get(), algo_);
}

Result<ContentDigest> hash_fd(int fd, uint8_t algo, uint64_t known_size, BlockTree::Builder* tree,
                              bool cached_only) {
  EVP_MD_CTX* ctx = file_context();
  if (auto started = start_digest(ctx, algo); !started) return started.error();
  // Aligned: the fd may have been opened with O_DIRECT. With a tree, two used in turn: the
  // next chunk is read while this one is hashed (see BlockTree::Builder::update); without,
  // it is read after, into the same one.
  auto lease = io_buffers().lend();
  std::optional<BufferPool::Lease> next_lease;
  if (tree) next_lease.emplace(io_buffers().lend());
  unsigned char* const first = lease.get(kChunk);
  unsigned char* const buffers[2] = {first, next_lease ? next_lease->get(kChunk) : first};
  struct Read {
    ssize_t n = 0;
    int error = 0;
  };
  const auto read_at = [fd, cached_only](unsigned char* buffer, uint64_t offset) {
    for (;;) {
      iovec into{buffer, kChunk};
      const ssize_t n =
          preadv2(fd, &into, 1, static_cast<off_t>(offset), cached_only ? RWF_NOWAIT : 0);
      if (n >= 0 || errno != EINTR) {
        const int error = n >= 0 ? 0 : cached_only && errno == EOPNOTSUPP ? EWOULDBLOCK : errno;
        return Read{n, error};
      }
    }
  };
  ContentDigest out;
  Read next = read_at(buffers[0], 0);
  for (int current = 0;; current ^= 1) {
    if (next.n < 0 && cached_only && next.error == EWOULDBLOCK) {
      return Error{EWOULDBLOCK, "not in the page cache"};
    }
    if (next.n < 0) return errno_error("read while hashing", next.error);
    if (next.n == 0) break;
    const std::span<const unsigned char> read(buffers[current], static_cast<size_t>(next.n));
    const bool last = read.size() < kChunk && out.bytes + read.size() == known_size;
    const auto read_next = [&] {
      next = last ? Read{} : read_at(buffers[current ^ 1], out.bytes + read.size());
    };
    bool updated = false;
    const auto flat = [&] {
      updated = EVP_DigestUpdate(ctx, read.data(), read.size()) == 1;
      read_next();
    };
    if (tree) {
      // Isolated: while it waits, this thread takes no other task (say, another file of the
      // primer's) that would start a hash on its own file context.
      tbb::this_task_arena::isolate([&] { tree->update(read, flat); });
    } else {
      flat();
    }
    if (!updated) return kUpdateFailed;
    out.bytes += read.size();
    if (last) break;
  }
  auto digest = finish_digest(ctx, algo);
  if (!digest) return digest.error();
  out.digest = *digest;
  return out;
}

std::optional<Sha256> sha256_of(const void* data, size_t size) {
  EVP_MD_CTX* ctx = buffer_context();
  Sha256 out{};
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex2(ctx, fetched(digest_algo::kSha256), nullptr) != 1 ||
      EVP_DigestUpdate(ctx, data, size) != 1 || EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 ||
      len != out.size()) {
    return std::nullopt;
  }
  return out;
}

}  // namespace digestfs
