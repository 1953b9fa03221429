// Hashes the content of an open file with OpenSSL EVP, in the algorithm an entry names.
#pragma once

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

}  // namespace digestfs
