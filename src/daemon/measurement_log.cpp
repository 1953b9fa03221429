#include "src/daemon/measurement_log.hpp"

namespace digestfs {

MeasurementLog::MeasurementLog(unsigned pcr, std::FILE* ascii, std::FILE* binary, Sink sink)
    : pcr_(pcr), ascii_(ascii), binary_(binary), sink_(std::move(sink)) {}

void MeasurementLog::add(const Measurement& m) {
  std::lock_guard lock(mutex_);
  if (!seen_.insert(m.template_sha256).second) return;
  if (ascii_) {
    std::fprintf(ascii_, "%s\n", ascii_line(pcr_, m).c_str());
    std::fflush(ascii_);
  }
  if (binary_) {
    const std::string entry = binary_entry(pcr_, m);
    std::fwrite(entry.data(), 1, entry.size(), binary_);
    std::fflush(binary_);
  }
  if (sink_) sink_(m);
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
