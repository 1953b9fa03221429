#include "src/daemon/read_ahead.hpp"

#include <fstream>

namespace digestfs {

Result<void> set_read_ahead(const std::string& device, unsigned kib) {
  const std::string knob = "/sys/class/bdi/" + device + "/read_ahead_kb";
  std::ofstream out(knob);
  out << kib << '\n';
  out.flush();
  if (!out) return errno_error("setting the read-ahead in " + knob);
  return {};
}

}  // namespace digestfs
