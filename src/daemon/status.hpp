// The state of a running mount, as one JSON document and as text for people: what the status
// attributes on the mount root return and `digestfs-cache status MOUNTPOINT` prints.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "src/daemon/event_log.hpp"
#include "src/daemon/index_reloader.hpp"
#include "src/daemon/integrity_checker.hpp"
#include "src/daemon/measurement_log.hpp"
#include "src/daemon/primer.hpp"
#include "src/daemon/tpm_extender.hpp"

namespace digestfs {

// What the status is made of; any pointer may be null (that part is not running).
struct StatusSources {
  const IntegrityChecker* checker = nullptr;
  const EventLog* log = nullptr;
  const IndexReloader* reloader = nullptr;
  const Primer* primer = nullptr;
  const MeasurementLog* measurements = nullptr;
  const TpmExtender* tpm = nullptr;
  // How the kernel caches names and attributes ("fanotify" or "timeout ...") and how many
  // cache entries the watcher of the source has dropped.
  std::string kernel_cache;
  const std::atomic<uint64_t>* cache_invalidations = nullptr;
  // How the FUSE layer keeps the files the kernel knows ("file handles" or "fds"), how many
  // it knows, how many of them hold an open fd, and how many verified files it keeps open
  // for reopening (fs/warm_opens.hpp).
  std::string nodes_kept_as;
  const std::atomic<size_t>* nodes = nullptr;
  const std::atomic<size_t>* node_fds = nullptr;
  const std::atomic<size_t>* warm_fds = nullptr;
  const std::atomic<size_t>* warm_verdicts = nullptr;
};

std::string status_json(const StatusSources& s);
std::string status_text(const StatusSources& s);

}  // namespace digestfs
