// A secret that only this machine's TPM can give back: sealed (tpm2-tss ESYS) as a keyed-hash
// object under the owner hierarchy's primary storage key, which the TPM derives from its own
// seed every time. The file holds the sealed object's public and private parts, which no other
// TPM can load; copied off the machine (a disk image, a backup) it reveals nothing.
#pragma once

#include <filesystem>
#include <string>

#include "src/base/result.hpp"

namespace digestfs {

// What the file begins with, so that a sealed secret is never taken for a plain one.
inline constexpr std::string_view kTpmSealedMagic = "digestfs-tpm-sealed 1\n";

// The secret sealed in `file`, unsealed by the TPM at `tcti` ("device:/dev/tpmrm0",
// "swtpm:port=2321"); when `file` does not exist yet, 32 random bytes sealed there first
// (mode 0600).
Result<std::string> tpm_sealed_secret(const std::string& tcti, const std::filesystem::path& file);

}  // namespace digestfs
