// libFuzzer target: configuration-file text, through the same option registry the mount uses.
#include <cstddef>
#include <cstdint>
#include <string>

#include "src/config/settings.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  digestfs::Settings settings;
  auto ok = digestfs::apply_config_text(
      settings, std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  if (ok) {
    // Whatever parsed must print and parse back.
    digestfs::Settings again;
    if (!digestfs::apply_config_text(again, digestfs::print_config(settings), "printed"))
      __builtin_trap();
  }
  return 0;
}
