// ArchiveSignatures: checks the OpenPGP signatures of an archive's Release files against the
// trust store's key files only, through GPGME (the GnuPG engine apt itself verifies with on
// Debian bookworm). The keys are imported into a private, temporary GnuPG home made for this
// one checker, so no key of the machine's own keyrings, nor any of the protected tree, counts.
#pragma once

#include <gpgme.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "src/base/result.hpp"

namespace digestfs {

// What a good signature vouched for: the bytes that were signed, and who signed them.
struct SignedText {
  std::string text;
  std::string signer;  // fingerprint of the key (or subkey) that made the good signature
};

class ArchiveSignatures {
 public:
  // Imports every key file (armored or binary, as Debian ships them) of `key_files`; fails
  // when GnuPG cannot be used or not one key could be imported.
  static Result<ArchiveSignatures> create(const std::vector<std::filesystem::path>& key_files);
  ~ArchiveSignatures();
  ArchiveSignatures(ArchiveSignatures&&) noexcept;
  ArchiveSignatures& operator=(ArchiveSignatures&&) = delete;

  // Errors say what is wrong with the signature; the caller names the file.
  // The signed text of a clearsigned file (InRelease), only when a key of the trust store
  // made a good signature over it; what is outside the signed part is never returned.
  Result<SignedText> clearsigned(const std::filesystem::path& file) const;
  // The bytes of `file` (Release), only when `signature` (Release.gpg) is a good signature
  // over exactly those bytes by a key of the trust store.
  Result<SignedText> detached(const std::filesystem::path& file,
                              const std::filesystem::path& signature) const;

  size_t imported_keys() const { return imported_; }

 private:
  struct Home;
  ArchiveSignatures(std::unique_ptr<Home> home, gpgme_ctx_t ctx, size_t imported);
  Result<SignedText> verdict(std::string text) const;

  std::unique_ptr<Home> home_;
  gpgme_ctx_t ctx_ = nullptr;
  size_t imported_ = 0;
};

}  // namespace digestfs
