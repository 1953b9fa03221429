// TrustStore: the OpenPGP public keys an administrator chose, read from a directory of key
// files: ASCII-armored (the RPM-GPG-KEY-* files distributions ship, Debian's .asc keys) or
// binary keyrings (Debian's /usr/share/keyrings/*.gpg). Nothing else is
// trusted: never the gpg-pubkey headers of a database, never keys found in a protected tree.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "cache/rpm_handles.hpp"
#include "src/base/result.hpp"

namespace digestfs {

struct TrustedKey {
  std::filesystem::path file;
  std::string key_id;   // 16 hex digits of the primary key (or subkey) id
  std::string user_id;  // the key's first user id, for humans
  bool subkey = false;
};

struct KeyFileProblem {
  std::filesystem::path file;
  std::string reason;
};

class TrustStore {
 public:
  // Fails when the directory cannot be read or holds no usable key. A malformed file is
  // reported in problems() and does not stop the others from loading.
  static Result<TrustStore> load(const std::filesystem::path& dir);

  // An empty store for the keys of `dir`; load() is how keys are normally read.
  explicit TrustStore(std::filesystem::path dir);
  // Adds the keys of one key file's text (several armored blocks, or binary keys, may follow
  // each other);
  // what cannot be used is reported in problems() and does not stop the rest.
  void add_key_file(const std::filesystem::path& file, const std::string& text);

  const std::filesystem::path& directory() const { return dir_; }
  const std::vector<TrustedKey>& keys() const { return keys_; }
  const std::vector<KeyFileProblem>& problems() const { return problems_; }
  // Shared by every transaction set the loader creates; librpm keyrings are thread-safe.
  rpmKeyring keyring() const { return keyring_.get(); }

 private:
  void add_binary_keyring(const std::filesystem::path& file, const std::string& text);
  void add_key(const std::filesystem::path& file, const uint8_t* packets, size_t len);

  std::filesystem::path dir_;
  std::vector<TrustedKey> keys_;
  std::vector<KeyFileProblem> problems_;
  rpm::KeyringPtr keyring_;
};

}  // namespace digestfs
