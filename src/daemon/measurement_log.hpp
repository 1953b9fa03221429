// MeasurementLog: what this machine trusted and what it let through or refused, as IMA's
// ima-ng template (so IMA tooling can parse and replay it), written in IMA's ASCII runtime
// measurement format and its binary form (src/ima). Accepted package headers come first, sorted by
// digest; then run-time events (refusals, files allowed or audited without an entry,
// rejected packages). Each distinct measurement is logged once.
//
// The state is order-independent: the SHA-256 extend chain over the sorted set of template
// hashes, so machines that trusted the same packages and saw the same events agree on it
// whatever order opens came in.
#pragma once

#include <cstdio>
#include <functional>
#include <mutex>
#include <set>
#include <vector>

#include "src/ima/ima_log.hpp"

namespace digestfs {

class MeasurementLog {
 public:
  // Called with each new measurement, in log order (the TPM extender's queue).
  using Sink = std::function<void(const Measurement&)>;

  // `failed` is told (once) why the log files no longer hold every measurement.
  using Failure = std::function<void(const std::string&)>;
  MeasurementLog(unsigned pcr, std::FILE* ascii, std::FILE* binary, Sink sink,
                 Failure failed = nullptr);
  // The entries of a log this one continues: known from now on, neither written nor sunk
  // again (the PCR holds them already). Before any add.
  void resume(const std::vector<Measurement>& earlier);
  // Appends m unless it was logged before; thread-safe.
  void add(const Measurement& m);
  // Whether every measurement reached the log files (a write failed: from then on they
  // are out of step with the state and the PCR).
  bool in_step() const;
  Sha256 state() const;
  size_t size() const;

 private:
  unsigned pcr_;
  std::FILE* ascii_;
  std::FILE* binary_;
  Sink sink_;
  Failure failed_;
  mutable std::mutex mutex_;
  bool in_step_ = true;    // guarded by mutex_
  std::set<Sha256> seen_;  // sorted: the order-independent state is folded over it
};

}  // namespace digestfs
