#include "src/daemon/measurement_log.hpp"

#include <cerrno>
#include <cstring>

namespace digestfs {

MeasurementLog::MeasurementLog(unsigned pcr, std::FILE* ascii, std::FILE* binary, Sink sink,
                               Failure failed)
    : pcr_(pcr),
      ascii_(ascii),
      binary_(binary),
      sink_(std::move(sink)),
      failed_(std::move(failed)) {}

void MeasurementLog::resume(const std::vector<Measurement>& earlier) {
  std::lock_guard lock(mutex_);
  for (const auto& m : earlier) seen_.insert(m.template_sha256);
}

void MeasurementLog::add(const Measurement& m) {
  std::lock_guard lock(mutex_);
  if (!seen_.insert(m.template_sha256).second) return;
  bool written = true;
  if (ascii_) {
    const std::string line = ascii_line(pcr_, m) + "\n";
    written &=
        std::fwrite(line.data(), 1, line.size(), ascii_) == line.size() && std::fflush(ascii_) == 0;
  }
  if (binary_) {
    const std::string entry = binary_entry(pcr_, m);
    written &= std::fwrite(entry.data(), 1, entry.size(), binary_) == entry.size() &&
               std::fflush(binary_) == 0;
  }
  if (!written && in_step_) {
    in_step_ = false;
    if (failed_) {
      failed_("a measurement could not be written (" + std::string(std::strerror(errno)) +
              "): the log is out of step with the state and the PCR from here on");
    }
  }
  if (sink_) sink_(m);
}

bool MeasurementLog::in_step() const {
  std::lock_guard lock(mutex_);
  return in_step_;
}

Sha256 MeasurementLog::state() const {
  std::lock_guard lock(mutex_);
  Sha256 state{};
  for (const auto& h : seen_) state = extend_sha256(state, h);
  return state;
}

size_t MeasurementLog::size() const {
  std::lock_guard lock(mutex_);
  return seen_.size();
}

}  // namespace digestfs
