// MountServices: what the mount runs beside the FUSE loop (the checker and its trusted index,
// the reloader, the primer, the measurement log and the TPM) behind the MountCore the FUSE
// layer asks. With verification off (noverify) it judges nothing and still answers status.
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>

#include "src/base/result.hpp"
#include "src/config/settings.hpp"
#include "src/daemon/event_log.hpp"
#include "src/daemon/index_reloader.hpp"
#include "src/daemon/integrity_checker.hpp"
#include "src/daemon/lower_path.hpp"
#include "src/daemon/measurement_files.hpp"
#include "src/daemon/measurement_log.hpp"
#include "src/daemon/mount_core.hpp"
#include "src/daemon/primer.hpp"
#include "src/daemon/status.hpp"
#include "src/daemon/tpm_extender.hpp"

namespace digestfs {

class MountServices : public MountCore {
 public:
  // Loads and checks the trusted index and opens the measurement log and the TPM. Fails
  // closed: an error here means there is no mount at all. source_fd (the source directory)
  // must outlive the services.
  static Result<std::unique_ptr<MountServices>> start(const Settings& settings, int source_fd,
                                                      PathMapping paths, EventLog& log);
  ~MountServices() override;
  MountServices(const MountServices&) = delete;
  MountServices& operator=(const MountServices&) = delete;

  // The mount is up: the primer starts.
  void mounted();
  // What status says of the kernel's caching (see StatusSources).
  void set_kernel_cache(std::string mode, const std::atomic<uint64_t>* invalidations) {
    status_.kernel_cache = std::move(mode);
    status_.cache_invalidations = invalidations;
  }
  // What status says of the FUSE layer's nodes (see StatusSources).
  void set_nodes(std::string kept_as, const std::atomic<size_t>* nodes,
                 const std::atomic<size_t>* fds, const std::atomic<size_t>* warm_fds,
                 const std::atomic<size_t>* warm_verdicts) {
    status_.nodes_kept_as = std::move(kept_as);
    status_.nodes = nodes;
    status_.node_fds = fds;
    status_.warm_fds = warm_fds;
    status_.warm_verdicts = warm_verdicts;
  }
  // `listener` runs after each new index is in force (see IntegrityChecker); with
  // verification off no verdict ever changes.
  void on_new_index(std::function<void()> listener) {
    if (checker_) checker_->set_index_listener(std::move(listener));
  }
  // Null when the sources cannot be watched (reloads then come only on request).
  IndexReloader* reloader() { return reloader_.get(); }

  OpenDecision judge_open(int fd, const struct stat& st) override;
  std::optional<OpenDecision> judge_without_waiting(int fd, const struct stat& st) override;
  uint64_t verdict_epoch() const override { return checker_ ? checker_->verdict_epoch() : 0; }
  void reopened() override {
    if (checker_) checker_->reopened();
  }
  int refuse_beside_writer(int fd) override;
  int refuse_changed(int fd) override;
  int judge_link(int fd, std::string_view target) override;
  bool allows_link_without_waiting(int fd, std::string_view target) override;
  std::optional<std::string> read_control(std::string_view name) override;
  std::optional<int> write_control(std::string_view name, std::string_view value) override;

 private:
  MountServices(PathMapping paths, EventLog& log) : paths_(std::move(paths)), log_(log) {}
  Result<void> start_verification(const Settings& settings, int source_fd);
  Result<void> start_measurements(const Settings& settings);
  // What the FUSE layer is told of a decision on the file at index path `path`.
  OpenDecision decided(Decision d, std::string path);

  PathMapping paths_;
  EventLog& log_;
  // Destroyed from the bottom up: the primer and the reloader stop before what they use.
  std::unique_ptr<TpmExtender> tpm_;
  FilePtr ascii_log_, binary_log_;
  std::unique_ptr<MeasurementLog> measurements_;
  std::unique_ptr<IntegrityChecker> checker_;  // null: verification off
  std::unique_ptr<IndexReloader> reloader_;
  std::unique_ptr<Primer> primer_;
  StatusSources status_;
  std::chrono::milliseconds reload_wait_{0};
};

}  // namespace digestfs
