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
  bool in_step() const { return in_step_.load(); }
  uint64_t extended() const { return extended_.load(); }

 private:
  TpmExtender(unsigned pcr, EventLog& log) : pcr_(pcr), log_(log) {}
  void run();

  unsigned pcr_;
  EventLog& log_;
  TSS2_TCTI_CONTEXT* tcti_ = nullptr;
  ESYS_CONTEXT* esys_ = nullptr;
  bool sha1_bank_ = false;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Measurement> queue_;
  bool stopping_ = false;
  std::atomic<bool> in_step_{true};
  std::atomic<uint64_t> extended_{0};
  std::thread thread_;
};

}  // namespace digestfs
