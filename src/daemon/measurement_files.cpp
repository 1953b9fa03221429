#include "src/daemon/measurement_files.hpp"

#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>

#include "src/base/hex.hpp"
#include "src/daemon/tpm_extender.hpp"

namespace digestfs {
namespace {

std::string binary_path(const std::filesystem::path& log) { return log.string() + ".bin"; }

Result<std::string> read_whole(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{errno ? errno : EIO, "cannot read " + path.string()};
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error{EIO, "cannot read " + path.string()};
  return text.str();
}

// The log and its binary form, whichever are there, renamed LOG.SECONDS and LOG.SECONDS.bin
// (a second one in the same second gets a suffix): what the caller says in syslog.
Result<std::string> keep_aside(const std::filesystem::path& log) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  std::string aside = log.string() + "." + std::to_string(now);
  std::error_code ec;
  for (int n = 1; std::filesystem::exists(aside, ec) || std::filesystem::exists(aside + ".bin", ec);
       ++n) {
    aside = log.string() + "." + std::to_string(now) + "-" + std::to_string(n);
  }
  for (const auto& [from, to] :
       {std::pair{log.string(), aside}, std::pair{binary_path(log), aside + ".bin"}}) {
    if (!std::filesystem::exists(from, ec)) continue;
    std::filesystem::rename(from, to, ec);
    if (ec) return Error{ec.value(), "cannot keep " + from + " aside: " + ec.message()};
  }
  return aside;
}

bool holds_something(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::exists(p, ec) && std::filesystem::file_size(p, ec) > 0;
}

// Why the log found cannot be continued ("" when it can): it must read as a whole ima-ng
// log, its binary form must hold the same entries, and with a TPM it must replay to the PCR.
std::string why_not_continued(const Result<std::vector<Measurement>>& parsed,
                              const std::string& binary, unsigned pcr, const TpmExtender* tpm) {
  if (!parsed) return "it is not a whole ima-ng log (" + parsed.error().message + ")";
  if (parsed->empty()) return "it holds no entry";
  std::string expected;
  for (const auto& m : *parsed) expected += binary_entry(pcr, m);
  if (binary != expected) return "its binary form does not hold the same entries";
  if (tpm) {
    const auto [sha1, sha256] = replay(*parsed);
    if (sha256 != tpm->start_sha256() || (tpm->start_sha1() && sha1 != *tpm->start_sha1())) {
      return "it replays to sha256:" + to_hex(sha256) +
             " but the PCR holds sha256:" + to_hex(tpm->start_sha256());
    }
  }
  return "";
}

bool all_zero(const Sha256& v) { return v == Sha256{}; }

}  // namespace

Result<MeasurementFiles> open_measurement_files(const std::filesystem::path& log, unsigned pcr,
                                                const TpmExtender* tpm) {
  MeasurementFiles files;
  bool resume = false;
  if (holds_something(log) || holds_something(binary_path(log))) {
    std::string why = "only its binary form is left";
    if (holds_something(log)) {
      auto text = read_whole(log);
      if (!text) return text.error();
      auto binary = read_whole(binary_path(log));
      auto parsed = parse_ascii_log(*text);
      why = why_not_continued(parsed, binary ? *binary : std::string(), pcr, tpm);
      if (why.empty()) files.resumed = std::move(parsed.value());
    }
    if (why.empty()) {
      resume = true;
      files.notices.push_back("measurement log " + log.string() + ": continued (" +
                              std::to_string(files.resumed.size()) + " entries)");
    } else {
      auto aside = keep_aside(log);
      if (!aside) return aside.error();
      files.notices.push_back("measurement log " + log.string() + " not continued: " + why +
                              "; kept as " + *aside + ", a new log begins");
    }
  }
  if (!resume) {
    // A new log starts where the kernel's does. Without a TPM, boot_aggregate is zeros, as
    // the kernel records it on a machine without one.
    const Sha256 aggregate = tpm ? tpm->boot_aggregate() : Sha256{};
    files.boot_aggregate = make_measurement(
        "sha256", std::string(reinterpret_cast<const char*>(aggregate.data()), aggregate.size()),
        "boot_aggregate");
    if (tpm && !all_zero(tpm->start_sha256())) {
      files.pcr_out_of_step = true;
      files.notices.push_back("PCR already holds sha256:" + to_hex(tpm->start_sha256()) +
                              " and no log that replays to it: the PCR is out of step with the "
                              "new log until the TPM is reset (a reboot)");
    }
  }
  files.ascii.reset(std::fopen(log.c_str(), "a"));
  files.binary.reset(std::fopen(binary_path(log).c_str(), "ab"));
  if (!files.ascii || !files.binary) return errno_error("measurement log " + log.string());
  return files;
}

}  // namespace digestfs
