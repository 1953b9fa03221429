#include "src/daemon/mount_services.hpp"

#include <syslog.h>

#include "src/base/control_xattrs.hpp"
#include "src/config/trusted_index.hpp"

namespace digestfs {

Result<std::unique_ptr<MountServices>> MountServices::start(const Settings& settings, int source_fd,
                                                            PathMapping paths, EventLog& log) {
  std::unique_ptr<MountServices> s(new MountServices(std::move(paths), log));
  s->status_.log = &log;
  if (settings.verify) {
    if (auto started = s->start_verification(settings, source_fd); !started) {
      return started.error();
    }
  }
  return s;
}

MountServices::~MountServices() = default;

Result<void> MountServices::start_verification(const Settings& settings, int source_fd) {
  auto loaded = load_trusted_index(settings);
  if (!loaded) {
    log_.notice(LOG_ERR, "not mounting: " + loaded.error().message);
    return loaded.error();
  }
  const DigestIndex& index = *loaded->index;
  report_index(index, log_);
  log_.notice(LOG_INFO, "index generation " + std::to_string(index.generation()) + ": " +
                            std::to_string(index.packages().size()) + " packages, " +
                            std::to_string(index.file_count()) + " files, " +
                            std::to_string(index.rejected().size()) + " rejected");
  checker_ = std::make_unique<IntegrityChecker>(settings.policy, log_);
  if (auto measuring = start_measurements(settings); !measuring) return measuring.error();
  checker_->set_index(loaded->index);
  status_.checker = checker_.get();
  reloader_ = std::make_unique<IndexReloader>(settings, std::move(loaded.value()), *checker_, log_);
  if (auto watching = reloader_->start(); !watching) {
    log_.notice(LOG_WARNING, "no automatic reload: " + watching.error().message);
    reloader_.reset();
  }
  status_.reloader = reloader_.get();
  if (settings.prime) {
    primer_ = std::make_unique<Primer>(*checker_, source_fd, paths_, log_, settings.sources.jobs);
    status_.primer = primer_.get();
  }
  return {};
}

// The measurement log and the TPM, when asked for: both must work, or there is no mount.
Result<void> MountServices::start_measurements(const Settings& settings) {
  if (settings.measure_log.empty() && settings.tpm.empty()) return {};
  if (!settings.tpm.empty()) {
    auto opened = TpmExtender::open(settings.tpm, settings.pcr, log_);
    if (!opened) return opened.error();
    tpm_ = std::move(opened.value());
  }
  if (!settings.measure_log.empty()) {
    ascii_log_.reset(std::fopen(settings.measure_log.c_str(), "w"));
    binary_log_.reset(std::fopen((settings.measure_log.string() + ".bin").c_str(), "wb"));
    if (!ascii_log_ || !binary_log_) {
      return errno_error("measurement log " + settings.measure_log.string());
    }
  }
  TpmExtender* t = tpm_.get();
  measurements_ = std::make_unique<MeasurementLog>(
      settings.pcr, ascii_log_.get(), binary_log_.get(),
      t ? MeasurementLog::Sink([t](const Measurement& m) { t->enqueue(m); }) : nullptr);
  checker_->set_measurements(measurements_.get());
  status_.measurements = measurements_.get();
  status_.tpm = tpm_.get();
  return {};
}

void MountServices::mounted() {
  if (primer_) primer_->start();
}

OpenDecision MountServices::judge_open(int fd, const struct stat& st) {
  if (!checker_) return OpenDecision{0, false, stamp_of(st)};
  const Decision d = checker_->judge_open(fd, st, index_path_of(fd, paths_));
  return OpenDecision{d.allow ? 0 : d.error, d.verified, d.stamp};
}

int MountServices::judge_link(int fd, std::string_view target) {
  if (!checker_) return 0;
  const Decision d = checker_->judge_link(index_path_of(fd, paths_), target);
  return d.allow ? 0 : d.error;
}

std::optional<std::string> MountServices::read_control(std::string_view name) {
  if (name == kStatusXattr) return status_json(status_);
  if (name == kStatusTextXattr) return status_text(status_);
  return std::nullopt;
}

std::optional<int> MountServices::write_control(std::string_view name, std::string_view) {
  if (name != kReloadXattr) return std::nullopt;
  if (!reloader_) return ENOTSUP;
  reloader_->request();
  return 0;
}

}  // namespace digestfs
