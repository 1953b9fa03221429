#include "cache/package_database.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <string_view>

#include "cache/rpm_library.hpp"
#include "src/base/proc_path.hpp"

namespace digestfs {
namespace {

constexpr std::string_view kImportedKey = "gpg-pubkey";

// What each of librpm's backends keeps its packages in: sqlite, ndb, and Berkeley DB.
constexpr const char* kDatabaseFiles[] = {"rpmdb.sqlite", "Packages.db", "Packages"};

// librpm opening a directory that holds none of them makes an empty database there, even to
// read: in the protected tree, and one that would from then on hide a database put there later.
bool holds_a_database(int dir_fd) {
  for (const char* name : kDatabaseFiles) {
    struct stat st;
    if (fstatat(dir_fd, name, &st, 0) == 0 && S_ISREG(st.st_mode)) return true;
  }
  return false;
}

using IndexIteratorPtr = rpm::Owned<rpmdbIndexIterator, rpmdbIndexIteratorFree>;

// Calls visit(key, instance) for every header an index of the database lists.
template <class Visit>
bool for_each_indexed(rpmdb db, rpmDbiTag tag, Visit visit) {
  IndexIteratorPtr it(rpmdbIndexIteratorInit(db, tag));
  if (!it) return false;
  const void* key = nullptr;
  size_t length = 0;
  while (rpmdbIndexIteratorNext(it.get(), &key, &length) == 0) {
    const std::string_view k(static_cast<const char*>(key), length);
    for (unsigned i = 0; i < rpmdbIndexIteratorNumPkgs(it.get()); ++i) {
      visit(k, rpmdbIndexIteratorPkgOffset(it.get(), i));
    }
  }
  return true;
}

}  // namespace

Result<PackageDatabase> PackageDatabase::open(const std::filesystem::path& root,
                                              const std::filesystem::path& dbpath) {
  const std::filesystem::path dir = root / dbpath.relative_path();
  // librpm creates a missing database directory, even to read: held open here, the
  // directory is read as it is, and one that vanished (a restore in progress) is not made
  // again under the administrator's feet.
  UniqueFd dir_fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd || !holds_a_database(dir_fd.get())) {
    return Error{ENOENT, "no rpm database at " + dir.string() +
                             " (set the root, or the dbpath relative to it)"};
  }
  rpm::TsPtr ts =
      rpm::make_ts(nullptr, RPMVSF_NOHDRCHK | RPMVSF_MASK_NODIGESTS | RPMVSF_MASK_NOSIGNATURES);
  rpmtsSetRootDir(ts.get(), "/");
  rpm::take_thread_log();
  {
    rpm::ScopedDbPath scoped(proc_path(dir_fd.get()));
    if (rpmtsOpenDB(ts.get(), O_RDONLY) != 0) {
      return Error{EIO, "cannot open rpm database " + dir.string() + ": " + rpm::take_thread_log()};
    }
  }
  // What librpm said while opening (backend detection, absent secondary indexes) is no
  // verdict on any header.
  rpm::take_thread_log();
  return PackageDatabase(std::move(dir_fd), std::move(ts), dir.string());
}

std::string PackageDatabase::origin(unsigned instance) const {
  return origin_ + "#" + std::to_string(instance);
}

std::optional<std::map<unsigned, std::string>> PackageDatabase::identities() const {
  rpmdb db = rpmtsGetRdb(ts_.get());
  std::map<unsigned, std::string> out;
  const bool named = for_each_indexed(db, RPMDBI_NAME, [&](std::string_view name, unsigned n) {
    if (name != kImportedKey) out.emplace(n, std::string());
  });
  const bool digested =
      named && for_each_indexed(db, RPMDBI_SHA1HEADER, [&](std::string_view sha1, unsigned n) {
        if (auto it = out.find(n); it != out.end()) it->second = sha1;
      });
  rpm::take_thread_log();
  if (!digested) return std::nullopt;
  return out;
}

Result<std::vector<DatabaseHeader>> PackageDatabase::read(const std::vector<unsigned>* only,
                                                          std::string& damaged) const {
  std::vector<DatabaseHeader> out;
  rpm::take_thread_log();
  auto take_all = [&](rpmdbMatchIterator it) {
    while (Header h = rpmdbNextIterator(it)) {
      // Keys imported into the database are never trusted implicitly, nor indexed.
      const char* name = headerGetString(h, RPMTAG_NAME);
      if (name && name == kImportedKey) continue;
      out.push_back(DatabaseHeader{rpmdbGetIteratorOffset(it), rpm::HeaderPtr(headerLink(h))});
    }
  };
  if (!only) {
    rpm::IteratorPtr it(rpmtsInitIterator(ts_.get(), RPMDBI_PACKAGES, nullptr, 0));
    if (!it) {
      std::string why = rpm::take_thread_log();
      return Error{EIO, "cannot read rpm database " + directory_ +
                            (why.empty() ? std::string(": no package index") : ": " + why)};
    }
    take_all(it.get());
  } else {
    for (unsigned instance : *only) {
      rpm::IteratorPtr it(
          rpmtsInitIterator(ts_.get(), RPMDBI_PACKAGES, &instance, sizeof instance));
      if (it) take_all(it.get());
    }
  }
  // librpm skips a header it cannot read, with a message: that becomes a rejection.
  std::string said = rpm::take_thread_log();
  if (!said.empty()) damaged += (damaged.empty() ? "" : "; ") + said;
  return out;
}

}  // namespace digestfs
