#include "cache/tpm_sealed_secret.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>
#include <unistd.h>

#include <cstring>
#include <system_error>

#include "src/base/file_text.hpp"
#include "src/base/unique_fd.hpp"

namespace digestfs {
namespace {

Error tss_error(const std::string& what, TSS2_RC rc) {
  return Error{EIO, "TPM " + what + ": " + Tss2_RC_Decode(rc)};
}

// What CreatePrimary and Create hand back beside the object itself, freed with its scope.
struct CreatedOutputs {
  TPM2B_PRIVATE* private_part = nullptr;  // Create only
  TPM2B_PUBLIC* public_part = nullptr;
  TPM2B_CREATION_DATA* creation = nullptr;
  TPM2B_DIGEST* hash = nullptr;
  TPMT_TK_CREATION* ticket = nullptr;
  ~CreatedOutputs() {
    Esys_Free(private_part);
    Esys_Free(public_part);
    Esys_Free(creation);
    Esys_Free(hash);
    Esys_Free(ticket);
  }
};

// One connection to the TPM, and the primary storage key made on it.
class TpmSession {
 public:
  ~TpmSession() {
    if (esys_ && primary_ != ESYS_TR_NONE) Esys_FlushContext(esys_, primary_);
    if (esys_) Esys_Finalize(&esys_);
    if (tcti_) Tss2_TctiLdr_Finalize(&tcti_);
  }

  Result<void> open(const std::string& tcti) {
    if (TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti.c_str(), &tcti_); rc != TSS2_RC_SUCCESS)
      return tss_error("TCTI '" + tcti + "'", rc);
    if (TSS2_RC rc = Esys_Initialize(&esys_, tcti_, nullptr); rc != TSS2_RC_SUCCESS)
      return tss_error("'" + tcti + "'", rc);
    // The usual storage key template (tpm2-tools' default for ECC): the same seed gives the
    // same key, so nothing of it has to be stored.
    TPM2B_PUBLIC in_public{};
    auto& area = in_public.publicArea;
    area.type = TPM2_ALG_ECC;
    area.nameAlg = TPM2_ALG_SHA256;
    area.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM |
                            TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                            TPMA_OBJECT_USERWITHAUTH;
    area.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
    area.parameters.eccDetail.symmetric.keyBits.aes = 128;
    area.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    area.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    area.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    area.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    TPM2B_SENSITIVE_CREATE sensitive{};
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION pcrs{};
    CreatedOutputs out;
    TSS2_RC rc =
        Esys_CreatePrimary(esys_, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                           &sensitive, &in_public, &outside, &pcrs, &primary_, &out.public_part,
                           &out.creation, &out.hash, &out.ticket);
    if (rc != TSS2_RC_SUCCESS) return tss_error("primary key", rc);
    return {};
  }

  Result<std::string> seal(const std::string& secret) {
    TPM2B_SENSITIVE_CREATE sensitive{};
    sensitive.sensitive.data.size = static_cast<UINT16>(secret.size());
    std::memcpy(sensitive.sensitive.data.buffer, secret.data(), secret.size());
    TPM2B_PUBLIC in_public{};
    in_public.publicArea.type = TPM2_ALG_KEYEDHASH;
    in_public.publicArea.nameAlg = TPM2_ALG_SHA256;
    in_public.publicArea.objectAttributes =
        TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_USERWITHAUTH;
    in_public.publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION pcrs{};
    CreatedOutputs out;
    TSS2_RC rc = Esys_Create(esys_, primary_, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                             &sensitive, &in_public, &outside, &pcrs, &out.private_part,
                             &out.public_part, &out.creation, &out.hash, &out.ticket);
    if (rc != TSS2_RC_SUCCESS) return tss_error("seal", rc);
    uint8_t buf[sizeof(TPM2B_PUBLIC) + sizeof(TPM2B_PRIVATE)];
    size_t offset = 0;
    rc = Tss2_MU_TPM2B_PUBLIC_Marshal(out.public_part, buf, sizeof buf, &offset);
    if (rc == TSS2_RC_SUCCESS)
      rc = Tss2_MU_TPM2B_PRIVATE_Marshal(out.private_part, buf, sizeof buf, &offset);
    if (rc != TSS2_RC_SUCCESS) return tss_error("seal", rc);
    return std::string(reinterpret_cast<char*>(buf), offset);
  }

  Result<std::string> unseal(std::string_view blob) {
    TPM2B_PUBLIC in_public{};
    TPM2B_PRIVATE in_private{};
    size_t offset = 0;
    const auto* bytes = reinterpret_cast<const uint8_t*>(blob.data());
    TSS2_RC rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(bytes, blob.size(), &offset, &in_public);
    if (rc == TSS2_RC_SUCCESS)
      rc = Tss2_MU_TPM2B_PRIVATE_Unmarshal(bytes, blob.size(), &offset, &in_private);
    if (rc != TSS2_RC_SUCCESS) return tss_error("sealed object", rc);
    ESYS_TR object = ESYS_TR_NONE;
    rc = Esys_Load(esys_, primary_, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &in_private,
                   &in_public, &object);
    if (rc != TSS2_RC_SUCCESS) return tss_error("load of the sealed object (another TPM?)", rc);
    TPM2B_SENSITIVE_DATA* data = nullptr;
    rc = Esys_Unseal(esys_, object, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &data);
    Esys_FlushContext(esys_, object);
    if (rc != TSS2_RC_SUCCESS) return tss_error("unseal", rc);
    std::string secret(reinterpret_cast<char*>(data->buffer), data->size);
    Esys_Free(data);
    return secret;
  }

 private:
  TSS2_TCTI_CONTEXT* tcti_ = nullptr;
  ESYS_CONTEXT* esys_ = nullptr;
  ESYS_TR primary_ = ESYS_TR_NONE;
};

}  // namespace

Result<std::string> tpm_sealed_secret(const std::string& tcti, const std::filesystem::path& file) {
  TpmSession tpm;
  if (auto opened = tpm.open(tcti); !opened) return opened.error();
  std::error_code ec;
  if (std::filesystem::exists(file, ec)) {
    auto text = read_file_text(file);
    if (!text) return text.error();
    if (!std::string_view(*text).starts_with(kTpmSealedMagic))
      return Error{EINVAL, file.string() + " holds no TPM-sealed secret"};
    return tpm.unseal(std::string_view(*text).substr(kTpmSealedMagic.size()));
  }
  std::string secret(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()), 32) != 1)
    return Error{EIO, "no random bytes for a TPM-sealed secret"};
  auto blob = tpm.seal(secret);
  if (!blob) return blob.error();
  std::string out(kTpmSealedMagic);
  out += *blob;
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return errno_error("create " + file.string());
  if (::write(fd.get(), out.data(), out.size()) != static_cast<ssize_t>(out.size()) ||
      ::fsync(fd.get()) != 0) {
    Error e = errno_error("write " + file.string());
    ::unlink(file.c_str());
    return e;
  }
  return secret;
}

}  // namespace digestfs
