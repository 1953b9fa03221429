#include "src/daemon/kernel_ima.hpp"

#include <fstream>
#include <string>

namespace digestfs {

Result<void> check_pcr_unused_by_kernel(unsigned pcr, const std::filesystem::path& securityfs) {
  std::error_code ec;
  // Present only while securityfs is mounted; IMA's directory only in a kernel with IMA.
  if (!std::filesystem::exists(securityfs / "lsm", ec)) {
    if (pcr != kImaPcr) return {};
    return Error{EBUSY,
                 "pcr=10: cannot tell whether the kernel's IMA measures into PCR 10: "
                 "securityfs is not mounted (mount -t securityfs securityfs " +
                     securityfs.string() + ")"};
  }
  for (const char* dir : {"ima", "integrity/ima"}) {
    const auto list = securityfs / dir / "ascii_runtime_measurements";
    if (!std::filesystem::exists(list, ec)) continue;
    std::ifstream in(list);
    if (!in) return Error{EACCES, "pcr=" + std::to_string(pcr) + ": cannot read " + list.string()};
    const std::string prefix = std::to_string(pcr) + " ";
    uint64_t entries = 0;
    for (std::string line; std::getline(in, line);) entries += line.starts_with(prefix);
    if (entries > 0) {
      return Error{EBUSY, "pcr=" + std::to_string(pcr) + ": the kernel's IMA measures into it (" +
                              std::to_string(entries) + " entries in " + list.string() +
                              "); choose another PCR"};
    }
  }
  return {};
}

}  // namespace digestfs
