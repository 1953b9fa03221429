// Hashes the content of an open file with OpenSSL EVP, in the algorithm an entry names.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "src/result.hpp"

namespace digestfs {

struct ContentDigest {
  uint8_t algo = 0;    // rpm's numbering (digest_algo::k*)
  std::string digest;  // binary
  uint64_t bytes = 0;  // how many bytes were hashed
};

// Reads fd from offset 0 to its end with pread (the file offset is left alone).
Result<ContentDigest> hash_fd(int fd, uint8_t algo);

// SHA-256 of a buffer, with a context kept per thread: no allocation per call.
std::array<unsigned char, 32> sha256_of(const void* data, size_t size);

}  // namespace digestfs
