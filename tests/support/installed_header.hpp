// Rewrites a package's header in a root's rpm database (sqlite, as Debian's rpm writes it) the
// way anyone who can write the database could: tags put back outside the signed region, where
// the header's signature still verifies. For the tests of what digestfs trusts.
#pragma once

#include <gtest/gtest.h>
#include <rpm/header.h>
#include <rpm/rpmtd.h>
#include <sqlite3.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace digestfs::test {

// Calls use on the stored header of the package named name; stores the header back, with what
// use made of it, when use says so.
inline ::testing::AssertionResult with_installed_header(const std::filesystem::path& root,
                                                        const std::string& name,
                                                        const std::function<bool(Header)>& use) {
  const auto db_file = root / "var/lib/rpm/rpmdb.sqlite";
  sqlite3* raw = nullptr;
  const int opened = sqlite3_open_v2(db_file.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> db(raw, sqlite3_close);
  if (opened != SQLITE_OK) return ::testing::AssertionFailure() << "cannot open " << db_file;
  sqlite3_stmt* select = nullptr;
  sqlite3_prepare_v2(db.get(), "SELECT hnum, blob FROM Packages", -1, &select, nullptr);
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> rows(select, sqlite3_finalize);
  while (sqlite3_step(select) == SQLITE_ROW) {
    const int hnum = sqlite3_column_int(select, 0);
    std::unique_ptr<headerToken_s, Header (*)(Header)> h(
        headerImport(const_cast<void*>(sqlite3_column_blob(select, 1)),
                     static_cast<unsigned>(sqlite3_column_bytes(select, 1)), HEADERIMPORT_COPY),
        headerFree);
    const char* found = h ? headerGetString(h.get(), RPMTAG_NAME) : nullptr;
    if (!found || name != found) continue;
    if (!use(h.get())) return ::testing::AssertionSuccess();
    unsigned size = 0;
    std::unique_ptr<void, void (*)(void*)> blob(headerExport(h.get(), &size), std::free);
    if (!blob) return ::testing::AssertionFailure() << "librpm cannot export the header";
    sqlite3_stmt* update = nullptr;
    sqlite3_prepare_v2(db.get(), "UPDATE Packages SET blob = ? WHERE hnum = ?", -1, &update,
                       nullptr);
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> statement(update, sqlite3_finalize);
    sqlite3_bind_blob(update, 1, blob.get(), static_cast<int>(size), SQLITE_TRANSIENT);
    sqlite3_bind_int(update, 2, hnum);
    if (sqlite3_step(update) != SQLITE_DONE) {
      return ::testing::AssertionFailure()
             << "cannot store the header: " << sqlite3_errmsg(db.get());
    }
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "no package " << name << " in " << db_file;
}

inline std::vector<std::string> string_array(Header h, rpmTagVal tag) {
  std::vector<std::string> out;
  struct rpmtd_s td;
  if (!headerGet(h, tag, &td, HEADERGET_MINMEM)) return out;
  while (const char* s = rpmtdNextString(&td)) out.emplace_back(s);
  rpmtdFreeData(&td);
  return out;
}

inline std::vector<uint32_t> number_array(Header h, rpmTagVal tag) {
  std::vector<uint32_t> out;
  struct rpmtd_s td;
  if (!headerGet(h, tag, &td, HEADERGET_MINMEM)) return out;
  while (const uint32_t* n = rpmtdNextUint32(&td)) out.push_back(*n);
  rpmtdFreeData(&td);
  return out;
}

// Replaces tag with values, as a tag outside the signed region.
inline void put_outside_region(Header h, rpmTagVal tag, const std::vector<std::string>& values) {
  std::vector<const char*> pointers;
  for (const auto& v : values) pointers.push_back(v.c_str());
  headerDel(h, tag);
  headerPutStringArray(h, tag, pointers.data(), static_cast<rpm_count_t>(pointers.size()));
}
inline void put_outside_region(Header h, rpmTagVal tag, const std::vector<uint32_t>& values) {
  headerDel(h, tag);
  headerPutUint32(h, tag, values.data(), static_cast<rpm_count_t>(values.size()));
}

// What someone who can write the database makes of hello-2.0-1.x86_64's /usr/bin/hello (its
// first file): new content's digest and size, put outside the signed region.
inline void claim_content_for_hello(Header h, const std::string& digest_hex, uint32_t size) {
  auto digests = string_array(h, RPMTAG_FILEDIGESTS);
  auto sizes = number_array(h, RPMTAG_FILESIZES);
  ASSERT_FALSE(digests.empty());
  ASSERT_FALSE(sizes.empty());
  digests[0] = digest_hex;
  sizes[0] = size;
  put_outside_region(h, RPMTAG_FILEDIGESTS, digests);
  put_outside_region(h, RPMTAG_FILESIZES, sizes);
}

}  // namespace digestfs::test
