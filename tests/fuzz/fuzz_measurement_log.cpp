// libFuzzer target: an IMA ima-ng ASCII log as `digestfs-cache replay` reads it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "src/ima/ima_log.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto log = digestfs::parse_ascii_log(std::string(reinterpret_cast<const char*>(data), size));
  if (log) {
    // A log that parses replays, and prints back to lines that parse to the same log.
    digestfs::replay(*log);
    std::string text;
    for (const auto& m : *log) text += digestfs::ascii_line(11, m) + "\n";
    auto again = digestfs::parse_ascii_log(text);
    if (!again || again->size() != log->size()) __builtin_trap();
  }
  return 0;
}
