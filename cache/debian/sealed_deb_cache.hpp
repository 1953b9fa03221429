// SealedDebCache: the file lists derived from .debs, kept so that a later load reads no .deb.
// A list is found by the .deb's SHA-256, which a verified Packages stanza gives; so the cache
// never decides which .deb is trusted, only what a trusted one holds. The whole file is sealed
// with HMAC-SHA-256 under a key that only root can read, or, where a TPM is configured, that
// only this machine's TPM gives back: whoever can write /var but not read that key cannot make
// the mount trust a digest through the cache; a cache whose seal does not verify is set aside
// with its reason and rebuilt from the .debs.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "cache/debian/deb_contents.hpp"
#include "src/base/result.hpp"

namespace digestfs {

class SealedDebCache {
 public:
  // Reads the key (made, 32 random bytes mode 0600, when it does not exist yet) and the cache.
  // With `tpm` (a TCTI), the key file holds the key sealed by that TPM instead. Fails when the
  // key cannot be had or others may read or write a plain one. A missing cache is empty; a
  // damaged or forged one is empty too, with the reason in problem().
  static Result<SealedDebCache> open(const std::filesystem::path& file,
                                     const std::filesystem::path& key_file, const std::string& tpm);

  const DebContents* find(const Sha256& deb) const;
  void put(DebContents contents) { entries_[contents.sha256] = std::move(contents); }
  // Keeps only the .debs in `used`, so the cache does not grow with every upgrade.
  void keep_only(const std::vector<Sha256>& used);
  // Writes the cache (to a new file, renamed over the old one), sealed.
  Result<void> save() const;

  const std::string& problem() const { return problem_; }
  size_t size() const { return entries_.size(); }

 private:
  std::filesystem::path file_;
  std::string key_;
  std::map<Sha256, DebContents> entries_;
  std::string problem_;
};

}  // namespace digestfs
