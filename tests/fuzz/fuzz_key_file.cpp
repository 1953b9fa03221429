// libFuzzer target: a key file's text, as the trust store reads every file of the keys
// directory (armored blocks split by us, then parsed by librpm).
#include <cstddef>
#include <cstdint>
#include <string>

#include "cache/rpm_library.hpp"
#include "cache/trust_store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  digestfs::rpm::ensure_initialized();
  digestfs::TrustStore store("fuzz");
  store.add_key_file("fuzz.asc", std::string(reinterpret_cast<const char*>(data), size));
  // Every block is either a key or a reported problem.
  if (store.keys().empty() && store.problems().empty()) __builtin_trap();
  return 0;
}
