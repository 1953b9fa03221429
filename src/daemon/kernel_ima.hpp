// Whether the kernel's own IMA measures into a PCR: two writers of one PCR make both logs
// unverifiable, so digestfs takes a PCR only when the kernel's list shows no entry in it.
// Keylime checks only PCR 10, IMA's, which is free on kernels without IMA or with IMA off.
#pragma once

#include <filesystem>

#include "src/base/result.hpp"

namespace digestfs {

inline constexpr unsigned kImaPcr = 10;

// An error when the kernel's IMA (its ascii_runtime_measurements under securityfs) has
// measured into `pcr`, or when `pcr` is IMA's and securityfs is not mounted to tell.
Result<void> check_pcr_unused_by_kernel(
    unsigned pcr, const std::filesystem::path& securityfs = "/sys/kernel/security");

}  // namespace digestfs
