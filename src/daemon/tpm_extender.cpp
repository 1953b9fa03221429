#include "src/daemon/tpm_extender.hpp"

#include <syslog.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include <cstring>

#include "cache/file_hasher.hpp"
#include "src/base/thread_name.hpp"

namespace digestfs {
namespace {

std::string tss_error(TSS2_RC rc) { return Tss2_RC_Decode(rc); }

// Whether the TPM has an allocated SHA-1 bank for this PCR.
bool sha1_bank_active(ESYS_CONTEXT* esys, unsigned pcr) {
  TPMS_CAPABILITY_DATA* caps = nullptr;
  TPMI_YES_NO more = 0;
  if (Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_PCRS, 0,
                         TPM2_NUM_PCR_BANKS, &more, &caps) != TSS2_RC_SUCCESS) {
    return false;
  }
  bool active = false;
  for (uint32_t i = 0; i < caps->data.assignedPCR.count; ++i) {
    const auto& sel = caps->data.assignedPCR.pcrSelections[i];
    if (sel.hash == TPM2_ALG_SHA1 && pcr / 8 < sel.sizeofSelect) {
      active = sel.pcrSelect[pcr / 8] & (1 << (pcr % 8));
    }
  }
  Esys_Free(caps);
  return active;
}

// One PCR of one bank (the TPM answers at most eight per read, so one at a time).
Result<std::string> read_pcr(ESYS_CONTEXT* esys, TPMI_ALG_HASH bank, unsigned pcr) {
  TPML_PCR_SELECTION selection{};
  selection.count = 1;
  selection.pcrSelections[0].hash = bank;
  selection.pcrSelections[0].sizeofSelect = 3;
  selection.pcrSelections[0].pcrSelect[pcr / 8] = static_cast<BYTE>(1 << (pcr % 8));
  UINT32 counter = 0;
  TPML_PCR_SELECTION* read = nullptr;
  TPML_DIGEST* values = nullptr;
  const TSS2_RC rc = Esys_PCR_Read(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &selection,
                                   &counter, &read, &values);
  if (rc != TSS2_RC_SUCCESS) {
    return Error{EIO, "TPM read of PCR " + std::to_string(pcr) + ": " + tss_error(rc)};
  }
  std::string value;
  if (values->count == 1) {
    value.assign(reinterpret_cast<const char*>(values->digests[0].buffer), values->digests[0].size);
  }
  Esys_Free(read);
  Esys_Free(values);
  if (value.empty()) return Error{EIO, "TPM has no PCR " + std::to_string(pcr) + " in that bank"};
  return value;
}

template <size_t N>
Result<std::array<unsigned char, N>> read_pcr_of_size(ESYS_CONTEXT* esys, TPMI_ALG_HASH bank,
                                                      unsigned pcr) {
  auto value = read_pcr(esys, bank, pcr);
  if (!value) return value.error();
  if (value->size() != N) return Error{EIO, "TPM PCR " + std::to_string(pcr) + ": odd size"};
  std::array<unsigned char, N> out{};
  std::memcpy(out.data(), value->data(), N);
  return out;
}

}  // namespace

Result<std::unique_ptr<TpmExtender>> TpmExtender::open(const std::string& tcti, unsigned pcr,
                                                       EventLog& log) {
  std::unique_ptr<TpmExtender> t(new TpmExtender(pcr, log));
  TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti.c_str(), &t->tcti_);
  if (rc != TSS2_RC_SUCCESS) return Error{EIO, "TPM TCTI '" + tcti + "': " + tss_error(rc)};
  rc = Esys_Initialize(&t->esys_, t->tcti_, nullptr);
  if (rc != TSS2_RC_SUCCESS) return Error{EIO, "TPM '" + tcti + "': " + tss_error(rc)};
  t->sha1_bank_ = sha1_bank_active(t->esys_, pcr);
  auto start = read_pcr_of_size<32>(t->esys_, TPM2_ALG_SHA256, pcr);
  if (!start) return start.error();
  t->start_sha256_ = *start;
  if (t->sha1_bank_) {
    auto start1 = read_pcr_of_size<20>(t->esys_, TPM2_ALG_SHA1, pcr);
    if (!start1) return start1.error();
    t->start_sha1_ = *start1;
  }
  std::string boot_pcrs;
  for (unsigned i = 0; i < 10; ++i) {
    auto value = read_pcr(t->esys_, TPM2_ALG_SHA256, i);
    if (!value) return value.error();
    boot_pcrs += *value;
  }
  auto aggregate = sha256_of(boot_pcrs.data(), boot_pcrs.size());
  if (!aggregate) return Error{EIO, "cannot hash the TPM's PCRs 0-9 for boot_aggregate"};
  t->boot_aggregate_ = *aggregate;
  t->thread_ = named_thread("dfs-tpm", [p = t.get()] { p->run(); });
  return t;
}

TpmExtender::~TpmExtender() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (esys_) Esys_Finalize(&esys_);
  if (tcti_) Tss2_TctiLdr_Finalize(&tcti_);
}

void TpmExtender::enqueue(const Measurement& m) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(m);
  }
  wake_.notify_one();
}

void TpmExtender::run() {
  for (;;) {
    Measurement m;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      m = std::move(queue_.front());
      queue_.pop_front();
    }
    if (in_step_) {
      TPML_DIGEST_VALUES values{};
      values.count = 1;
      values.digests[0].hashAlg = TPM2_ALG_SHA256;
      std::memcpy(values.digests[0].digest.sha256, m.template_sha256.data(), 32);
      if (sha1_bank_) {
        values.count = 2;
        values.digests[1].hashAlg = TPM2_ALG_SHA1;
        std::memcpy(values.digests[1].digest.sha1, m.template_sha1.data(), 20);
      }
      TSS2_RC rc = Esys_PCR_Extend(esys_, ESYS_TR_PCR0 + pcr_, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                   ESYS_TR_NONE, &values);
      if (rc == TSS2_RC_SUCCESS) {
        ++extended_;
      } else {
        // Said before it shows in status: whoever sees the flag can find the reason logged.
        log_.notice(LOG_ERR, "TPM extend of PCR " + std::to_string(pcr_) + " failed (" +
                                 tss_error(rc) + "): the PCR is no longer in step with the log");
        in_step_ = false;
      }
    }
  }
}

}  // namespace digestfs
