// The rpm database of a root, open for reading for as long as a load needs it: the headers
// themselves, all or some, and what identifies each one, from the database's own indexes
// without reading a header (what lets a reload read only the headers that changed).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cache/rpm_handles.hpp"
#include "src/base/result.hpp"
#include "src/base/unique_fd.hpp"

namespace digestfs {

struct DatabaseHeader {
  // rpm's number for the header, which its database never gives to another header
  // (a rebuilt database numbers afresh: the identity below tells them apart).
  unsigned instance = 0;
  rpm::HeaderPtr header;  // as librpm read it, with the tags rpm keeps outside its region
};

class PackageDatabase {
 public:
  static Result<PackageDatabase> open(const std::filesystem::path& root,
                                      const std::filesystem::path& dbpath);

  // "rpmdb:<dir>", and "rpmdb:<dir>#<instance>" for one header of it.
  const std::string& origin() const { return origin_; }
  std::string origin(unsigned instance) const;

  // Every installed header but imported keys, by instance, with the SHA-1 digest rpm recorded
  // for its signed region (empty when it has none), read from the name and SHA-1 indexes.
  // Nothing when the indexes cannot be read.
  std::optional<std::map<unsigned, std::string>> identities() const;

  // Every header but imported keys, or (with `only`) the headers of these instances. What
  // librpm says about headers it cannot read is appended to `damaged`; fails only when the
  // database has no package table to read.
  Result<std::vector<DatabaseHeader>> read(const std::vector<unsigned>* only,
                                           std::string& damaged) const;

 private:
  PackageDatabase(UniqueFd dir, rpm::TsPtr ts, std::string directory)
      : dir_(std::move(dir)),
        ts_(std::move(ts)),
        directory_(std::move(directory)),
        origin_("rpmdb:" + directory_) {}
  // Held while the database is open: librpm opened it through this directory's fd, and
  // opens its journal files later through the same path.
  UniqueFd dir_;
  rpm::TsPtr ts_;
  std::string directory_;
  std::string origin_;
};

}  // namespace digestfs
