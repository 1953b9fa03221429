// libFuzzer target: the mount's command line (NUL-separated arguments), -o lists included.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "src/daemon/mount_args.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args{"digestfs"};
  std::string current;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      args.push_back(current);
      current.clear();
    } else {
      current.push_back(static_cast<char>(data[i]));
    }
  }
  args.push_back(current);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  auto parsed = digestfs::parse_mount_args(static_cast<int>(args.size()), argv.data());
  (void)parsed;
  return 0;
}
