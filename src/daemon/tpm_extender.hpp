// TpmExtender: extends each measurement's template hash into a PCR through tpm2-tss ESYS
// (SHA-256 bank, and SHA-1 where that bank is active), in log order, on its own thread: a
// slow TPM never delays an open. A failure is logged once and the PCR is reported as out of
// step with the log from then on.
#pragma once

#include <tss2/tss2_esys.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "src/daemon/event_log.hpp"
#include "src/daemon/measurement_log.hpp"

namespace digestfs {

class TpmExtender {
 public:
  // tcti: a tpm2-tss TCTI configuration ("swtpm:port=2321", "device:/dev/tpmrm0").
  static Result<std::unique_ptr<TpmExtender>> open(const std::string& tcti, unsigned pcr,
                                                   EventLog& log);
  ~TpmExtender();
  TpmExtender(const TpmExtender&) = delete;
  TpmExtender& operator=(const TpmExtender&) = delete;

  void enqueue(const Measurement& m);
  // The PCR holds exactly the replay of the log: it did when the log began or was resumed,
  // and every extend since succeeded.
  bool in_step() const { return in_step_.load() && started_in_step_.load(); }
  uint64_t extended() const { return extended_.load(); }

  // Read when the extender opened, before any extend of its own.
  const Sha256& start_sha256() const { return start_sha256_; }
  const std::optional<Sha1>& start_sha1() const { return start_sha1_; }  // none: no SHA-1 bank
  // IMA's boot_aggregate as the kernel computes it for a SHA-256 log: SHA-256 over the
  // SHA-256 bank's PCRs 0 to 9.
  const Sha256& boot_aggregate() const { return boot_aggregate_; }
  // The log the PCR's value was compared with did not replay to it (said in syslog by the
  // caller): the PCR is reported out of step for as long as this mount lives.
  void started_out_of_step() { started_in_step_ = false; }
  // The entries of a continued log, which the PCR holds already: counted as extended.
  void resumed(uint64_t entries) { extended_ += entries; }

 private:
  TpmExtender(unsigned pcr, EventLog& log) : pcr_(pcr), log_(log) {}
  void run();

  unsigned pcr_;
  EventLog& log_;
  TSS2_TCTI_CONTEXT* tcti_ = nullptr;
  ESYS_CONTEXT* esys_ = nullptr;
  bool sha1_bank_ = false;
  Sha256 start_sha256_{};
  std::optional<Sha1> start_sha1_;
  Sha256 boot_aggregate_{};
  std::atomic<bool> started_in_step_{true};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Measurement> queue_;
  bool stopping_ = false;
  std::atomic<bool> in_step_{true};
  std::atomic<uint64_t> extended_{0};
  std::thread thread_;
};

}  // namespace digestfs
