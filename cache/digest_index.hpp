// DigestIndex: the immutable, path-bound snapshot of every file digest that accepted
// packages signed. Built once (in parallel) and then only read, so lookups need no lock;
// a reload builds a new snapshot and swaps the pointer.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cache/header_verdict.hpp"
#include "src/base/digest.hpp"

namespace digestfs {

// What kind of package a record or a rejection came from: it names the package in
// measurement logs and exported policies ("rpm:NEVRA", "deb:NAME_VERSION_ARCH").
enum class PackageKind : uint8_t { Rpm, Deb };

struct PackageRecord {
  std::string nevra;   // for a .deb, NAME_VERSION_ARCH
  std::string origin;  // the database or .rpm file the header came from
  std::string signer;  // key id of the header signature
  uint8_t digest_algo = 0;
  uint32_t file_count = 0;
  // SHA-256 of the header as read (all zero: none).
  // A fixed array, not a string: nothing per package lands on the loader threads' heaps.
  std::array<unsigned char, 32> header_key{};
  // SHA-256 of the header's signed immutable region, as rpm recorded and headerCheck
  // verified it (RPMTAG_SHA256HEADER); all zero for headers made before rpm had it.
  std::array<unsigned char, 32> region_sha256{};
  // Database headers: rpm's number for the header, and the SHA-1 digest rpm recorded for its
  // region, as the database's index lists it. What finds the header unchanged on reload.
  unsigned instance = 0;
  std::string sha1_header;
  PackageKind kind = PackageKind::Rpm;
};

// The name a measurement log and a Keylime policy give the package.
inline std::string measured_name(const PackageRecord& p) {
  return (p.kind == PackageKind::Deb ? "deb:" : "rpm:") + p.nevra;
}

// The digest a package is measured by (its rpm:NEVRA entry): the signed region's SHA-256,
// or for headers made before rpm recorded one, the SHA-256 of the header as read.
inline const std::array<unsigned char, 32>& measured_digest(const PackageRecord& p) {
  return p.region_sha256 != std::array<unsigned char, 32>{} ? p.region_sha256 : p.header_key;
}

struct RejectedHeader {
  std::string nevra;  // "(unreadable)" when librpm could not read a name
  std::string origin;
  HeaderVerdict verdict;
  std::string reason;
  PackageKind kind = PackageKind::Rpm;
};

// The name a measurement log gives the rejection: "rpm-rejected:NEVRA:VERDICT".
inline std::string measured_name(const RejectedHeader& r) {
  return std::string(r.kind == PackageKind::Deb ? "deb-rejected:" : "rpm-rejected:") + r.nevra +
         ":" + std::string(verdict_name(r.verdict));
}

// One file as a package header describes it, before interning: views into whatever read the
// header (or a test's own strings), valid until the file is added to a Builder.
struct PackagedFile {
  std::string_view dir;  // with the trailing '/'
  std::string_view name;
  std::string_view digest;  // binary; empty for anything but regular files
  std::string_view user, group, linkto, caps;
  uint64_t size = 0;
  uint32_t mtime = 0;
  uint32_t rdev = 0;
  uint16_t mode = 0;
  uint16_t attrs = 0;         // rpm's RPMFILE_* bits: config, doc, missingok, ghost, ...
  uint16_t verify_flags = 0;  // rpm's RPMVERIFY_* bits: what %verify() says to check
  int8_t state = -1;          // rpm's RPMFILE_STATE_*; -1 for headers read from .rpm files
};

class DigestIndex;

// One package's claim on a path. A cheap view, valid while its index lives.
class FileEntry {
 public:
  std::string path() const;
  std::string_view dirname() const;  // with the trailing '/'
  std::string_view basename() const;
  uint32_t dir_id() const;  // entries of one directory share it (0 .. DigestIndex::dir_count())
  uint8_t algo() const;
  DigestView digest() const;  // empty for anything but regular files (and %ghost ones)
  uint64_t size() const;
  uint16_t mode() const;
  std::string_view user() const;
  std::string_view group() const;
  std::string_view linkto() const;
  std::string_view caps() const;
  uint32_t mtime() const;
  uint32_t rdev() const;
  uint16_t attrs() const;
  uint16_t verify_flags() const;
  int8_t state() const;
  const PackageRecord& package() const;

  bool is_config() const;
  bool is_ghost() const;
  // Whether the mode is the package's to say (%verify(mode)); not for Debian's entries, whose
  // modes dpkg-statoverride may change.
  bool verifies_mode() const;

 private:
  friend class DigestIndex;
  friend class EntryRange;
  FileEntry(const DigestIndex* index, uint32_t record) : index_(index), record_(record) {}
  const DigestIndex* index_;
  uint32_t record_;
};

// Every claim on one path: adjacent records of the index, read in place.
class EntryRange {
 public:
  class Iterator {
   public:
    FileEntry operator*() const { return FileEntry(index_, record_); }
    Iterator& operator++() {
      ++record_;
      return *this;
    }
    bool operator==(const Iterator&) const = default;

   private:
    friend class EntryRange;
    Iterator(const DigestIndex* index, uint32_t record) : index_(index), record_(record) {}
    const DigestIndex* index_;
    uint32_t record_;
  };

  Iterator begin() const { return {index_, first_}; }
  Iterator end() const { return {index_, first_ + count_}; }
  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }
  FileEntry operator[](size_t i) const {
    return FileEntry(index_, first_ + static_cast<uint32_t>(i));
  }
  FileEntry front() const { return (*this)[0]; }

 private:
  friend class DigestIndex;
  EntryRange(const DigestIndex* index, uint32_t first, uint32_t count)
      : index_(index), first_(first), count_(count) {}
  const DigestIndex* index_;
  uint32_t first_, count_;
};

struct PathConflict {
  std::string path;
  std::vector<std::string> packages;  // NEVRAs of every claim
};

class DigestIndex {
 public:
  class Builder;
  // Packages one snapshot can hold (a record names its package in 16 bits).
  static constexpr size_t kMaxPackages = 65535;

  // Every claim on exactly this path (absolute, no trailing slash), most often one.
  EntryRange lookup(std::string_view path) const;
  bool contains(std::string_view path) const;
  // Whether another claim on record i's path exists (records of one path are adjacent).
  bool shared(size_t i) const;

  size_t file_count() const { return records_.size(); }
  size_t dir_count() const { return dirs_.size(); }
  FileEntry entry(size_t i) const { return FileEntry(this, static_cast<uint32_t>(i)); }
  uint64_t generation() const { return generation_; }
  const std::vector<PackageRecord>& packages() const { return packages_; }
  const std::vector<RejectedHeader>& rejected() const { return rejected_; }
  // Packages taken over unchanged from the previous snapshot when this one was built.
  size_t reused_packages() const { return reused_; }
  // Paths claimed by more than one package with differing content, type or target.
  std::vector<PathConflict> conflicts() const;
  // Bytes held by the snapshot's tables (for the memory benchmark and status).
  size_t memory_bytes() const;
  // Whether the strings of packages dropped since the last snapshot built from scratch have
  // grown the arena enough that the next one should be built from scratch again.
  bool worth_compacting() const { return arena_.size() > compact_arena_bytes_ * 5 / 4 + 4096; }

 private:
  friend class FileEntry;
  // 40 bytes a file: what few files have (link targets, capabilities, device numbers) sits in
  // `extras_`, the owner's names in `owners_`.
  struct Record {
    uint64_t size;
    uint32_t dir, name, digest, extra, mtime;
    uint16_t package, owner, mode, attrs, verify_flags;
    uint8_t digest_len;
    int8_t state;
  };
  static_assert(sizeof(Record) == 40);
  struct Owner {
    uint32_t user, group;
  };
  struct Extra {
    uint32_t linkto, caps, rdev;
  };
  const char* str(uint32_t offset) const { return arena_.data() + offset; }
  bool same_path(uint32_t a, uint32_t b) const;
  bool same_content(uint32_t a, uint32_t b) const;
  // The first record of exactly this path, or nothing.
  std::optional<uint32_t> first_record(std::string_view dir, std::string_view name) const;

  std::vector<Record> records_;  // sorted by path; claims on one path are adjacent
  std::vector<uint32_t> dirs_;   // dir id -> arena offset of "/dir/"
  std::vector<uint32_t> slots_;  // open addressing over first records; UINT32_MAX empty
  std::string arena_;            // NUL-terminated strings and raw digests
  std::vector<Owner> owners_;
  std::vector<Extra> extras_;  // [0]: none
  std::vector<PackageRecord> packages_;
  std::vector<RejectedHeader> rejected_;
  uint64_t generation_ = 0;
  size_t reused_ = 0;
  size_t compact_arena_bytes_ = 0;  // the arena's size when last built from scratch
};

// Collects packages and files (single-threaded; interning makes the snapshot compact).
class DigestIndex::Builder {
 public:
  Builder();
  ~Builder();
  Builder(const Builder&) = delete;
  Builder& operator=(const Builder&) = delete;

  // Room for about this many files, so the tables and the interning maps do not regrow.
  void reserve(size_t files);
  // Takes packages over from an earlier snapshot, unchanged and in their earlier order, with
  // their records as they are: strings, directories and owners are the earlier snapshot's,
  // nothing is interned again, and the records stay sorted. Only before anything else.
  void keep_from(std::shared_ptr<const DigestIndex> earlier, const std::vector<uint32_t>& packages);
  // False (no record added) when the snapshot could not name it: it holds kMaxPackages
  // packages already, or as many distinct owners (user and group) as a record can name.
  bool add_package(PackageRecord package, const std::vector<PackagedFile>& files);
  void add_rejected(RejectedHeader rejected);
  std::shared_ptr<const DigestIndex> build(uint64_t generation);

 private:
  uint32_t intern(std::string_view s);
  uint32_t intern_dir(std::string_view dir);
  uint32_t intern_name(std::string_view dir, std::string_view name);
  std::optional<uint16_t> intern_owner(std::string_view user, std::string_view group);
  uint32_t start_package(PackageRecord package, size_t files);
  struct Interning;
  std::unique_ptr<Interning> interning_;
  std::unique_ptr<DigestIndex> index_;
  std::shared_ptr<const DigestIndex> earlier_;  // kept from: its names are reused
  std::vector<uint32_t> renumbered_;            // its package id -> ours, or none
};

}  // namespace digestfs
