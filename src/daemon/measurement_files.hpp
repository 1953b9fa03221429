// The measurement log's two files across mounts. A mount continues the log it finds when the
// log replays to the PCR's value (or, with no TPM, when it reads as a whole ima-ng log): a
// remount or a restart extends the same PCR, so its log must hold everything before. Its
// binary form must hold the same entries, or it is not continued either. A log
// that cannot be continued is kept beside, renamed LOG.TIME (and LOG.TIME.bin), never
// truncated; the new log begins with IMA's boot_aggregate entry, as the kernel's does.
#pragma once

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/base/result.hpp"
#include "src/ima/ima_log.hpp"

namespace digestfs {

class TpmExtender;

struct FileClose {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileClose>;

struct MeasurementFiles {
  FilePtr ascii, binary;                      // open for appending
  std::vector<Measurement> resumed;           // what the continued log held already
  std::optional<Measurement> boot_aggregate;  // a new log's first entry, to be added
  // Said once in syslog: what was kept aside, and why the PCR is out of step, if it is.
  std::vector<std::string> notices;
  bool pcr_out_of_step = false;
};

// pcr: the PCR the log's entries name (its binary form carries it).
Result<MeasurementFiles> open_measurement_files(const std::filesystem::path& log, unsigned pcr,
                                                const TpmExtender* tpm);

}  // namespace digestfs
