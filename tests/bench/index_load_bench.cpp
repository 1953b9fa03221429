// One load of the digest cache: wall time, and resident memory the snapshot keeps per
// indexed file (RSS after the load and a malloc_trim, minus RSS before it).
// Usage: index-load-bench KEYS ROOT   -> one JSON line
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "cache/file_hasher.hpp"
#include "cache/index_loader.hpp"
#include "cache/rpm_library.hpp"
#include "src/daemon/heap_policy.hpp"

namespace {
long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  long value = 0;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> value;
      return value;
    }
    status.ignore(1 << 12, '\n');
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: index-load-bench KEYS ROOT\n");
    return 2;
  }
  auto trust = digestfs::TrustStore::load(argv[1]);
  if (!trust) {
    std::fprintf(stderr, "%s\n", trust.error().message.c_str());
    return 1;
  }
  digestfs::SourceOptions options;
  options.root = argv[2];
  digestfs::keep_large_blocks_off_the_heap();  // as the daemon does
  // Warm librpm's and OpenSSL's one-time setup (configuration, providers) so that it is not
  // counted as the index's memory.
  digestfs::rpm::ensure_initialized();
  digestfs::sha256_of("", 0);
  malloc_trim(0);
  const long before = rss_kib();
  auto start = std::chrono::steady_clock::now();
  auto index = digestfs::load_digest_index(*trust, options);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!index) {
    std::fprintf(stderr, "%s\n", index.error().message.c_str());
    return 1;
  }
  malloc_trim(0);
  const long after = rss_kib();
  const size_t files = (*index)->file_count();
  std::printf(
      "{\"seconds\": %.4f, \"files\": %zu, \"packages\": %zu, \"rss_bytes_per_file\": %.1f, "
      "\"table_bytes_per_file\": %.1f}\n",
      seconds, files, (*index)->packages().size(), files ? (after - before) * 1024.0 / files : 0.0,
      files ? static_cast<double>((*index)->memory_bytes()) / files : 0.0);
  return 0;
}
