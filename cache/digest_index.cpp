#include "cache/digest_index.hpp"

#include <rpm/rpmfiles.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_map>

namespace digestfs {
namespace {

constexpr uint32_t kEmptySlot = std::numeric_limits<uint32_t>::max();
constexpr uint32_t kNotKept = std::numeric_limits<uint32_t>::max();

// A path's hash from its directory's and its name's: a snapshot hashes each directory once.
uint64_t hash_of(std::string_view s) { return std::hash<std::string_view>()(s); }
uint64_t path_hash_of(uint64_t dir_hash, std::string_view name) {
  return hash_of(name) + 0x9E3779B97F4A7C15ull * dir_hash;
}

std::pair<std::string_view, std::string_view> split_path(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {{}, path};
  return {path.substr(0, slash + 1), path.substr(slash + 1)};
}

}  // namespace

// ---- FileEntry ----

std::string_view FileEntry::dirname() const {
  return index_->str(index_->dirs_[index_->records_[record_].dir]);
}
std::string_view FileEntry::basename() const { return index_->str(index_->records_[record_].name); }
uint32_t FileEntry::dir_id() const { return index_->records_[record_].dir; }
std::string FileEntry::path() const {
  std::string p(dirname());
  p += basename();
  return p;
}
uint8_t FileEntry::algo() const { return package().digest_algo; }
DigestView FileEntry::digest() const {
  const auto& r = index_->records_[record_];
  return {algo(), {reinterpret_cast<const unsigned char*>(index_->str(r.digest)), r.digest_len}};
}
uint64_t FileEntry::size() const { return index_->records_[record_].size; }
uint16_t FileEntry::mode() const { return index_->records_[record_].mode; }
std::string_view FileEntry::user() const {
  return index_->str(index_->owners_[index_->records_[record_].owner].user);
}
std::string_view FileEntry::group() const {
  return index_->str(index_->owners_[index_->records_[record_].owner].group);
}
std::string_view FileEntry::linkto() const {
  return index_->str(index_->extras_[index_->records_[record_].extra].linkto);
}
std::string_view FileEntry::caps() const {
  return index_->str(index_->extras_[index_->records_[record_].extra].caps);
}
uint32_t FileEntry::mtime() const { return index_->records_[record_].mtime; }
uint32_t FileEntry::rdev() const { return index_->extras_[index_->records_[record_].extra].rdev; }
uint16_t FileEntry::attrs() const { return index_->records_[record_].attrs; }
uint16_t FileEntry::verify_flags() const { return index_->records_[record_].verify_flags; }
int8_t FileEntry::state() const { return index_->records_[record_].state; }
const PackageRecord& FileEntry::package() const {
  return index_->packages_[index_->records_[record_].package];
}
bool FileEntry::is_config() const { return attrs() & RPMFILE_CONFIG; }
bool FileEntry::is_ghost() const { return attrs() & RPMFILE_GHOST; }
bool FileEntry::verifies_mode() const { return verify_flags() & RPMVERIFY_MODE; }

// ---- DigestIndex ----

bool DigestIndex::same_path(uint32_t a, uint32_t b) const {
  return records_[a].dir == records_[b].dir && records_[a].name == records_[b].name;
}

bool DigestIndex::same_content(uint32_t a, uint32_t b) const {
  const Record& x = records_[a];
  const Record& y = records_[b];
  return x.mode == y.mode && entry(a).linkto() == entry(b).linkto() &&
         entry(a).digest() == entry(b).digest();
}

std::optional<uint32_t> DigestIndex::first_record(std::string_view dir,
                                                  std::string_view name) const {
  if (slots_.empty()) return std::nullopt;
  const size_t mask = slots_.size() - 1;
  for (size_t i = path_hash_of(hash_of(dir), name) & mask;; i = (i + 1) & mask) {
    const uint32_t first = slots_[i];
    if (first == kEmptySlot) return std::nullopt;
    const Record& r = records_[first];
    if (str(r.name) == name && str(dirs_[r.dir]) == dir) return first;
  }
}

EntryRange DigestIndex::lookup(std::string_view path) const {
  auto [dir, name] = split_path(path);
  const auto first = first_record(dir, name);
  if (!first) return {this, 0, 0};
  uint32_t end = *first + 1;
  while (end < records_.size() && same_path(end, *first)) ++end;
  return {this, *first, end - *first};
}

bool DigestIndex::contains(std::string_view path) const { return !lookup(path).empty(); }

bool DigestIndex::shared(size_t i) const {
  const auto r = static_cast<uint32_t>(i);
  return (r > 0 && same_path(r, r - 1)) || (r + 1 < records_.size() && same_path(r, r + 1));
}

std::vector<PathConflict> DigestIndex::conflicts() const {
  std::vector<PathConflict> out;
  for (uint32_t i = 0; i < records_.size();) {
    uint32_t end = i + 1;
    bool differ = false;
    while (end < records_.size() && same_path(end, i)) {
      differ |= !same_content(end, i);
      ++end;
    }
    if (differ) {
      PathConflict c{entry(i).path(), {}};
      for (uint32_t k = i; k < end; ++k) c.packages.push_back(packages_[records_[k].package].nevra);
      out.push_back(std::move(c));
    }
    i = end;
  }
  return out;
}

size_t DigestIndex::memory_bytes() const {
  size_t bytes = records_.capacity() * sizeof(Record) + dirs_.capacity() * sizeof(uint32_t) +
                 slots_.capacity() * sizeof(uint32_t) + arena_.capacity() +
                 owners_.capacity() * sizeof(Owner) + extras_.capacity() * sizeof(Extra);
  for (const auto& p : packages_) {
    bytes += sizeof(p) + p.nevra.capacity() + p.origin.capacity() + p.signer.capacity() +
             p.sha1_header.capacity();
  }
  return bytes;
}

// ---- Builder ----

// Transparent hashing: interning a string_view looks it up without building a std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};
using InternMap = std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>>;

struct DigestIndex::Builder::Interning {
  InternMap strings;
  InternMap dirs;
  std::unordered_map<uint64_t, uint16_t> owners;  // (user << 32 | group) -> owner
};

DigestIndex::Builder::Builder()
    : interning_(std::make_unique<Interning>()), index_(new DigestIndex()) {
  index_->arena_.push_back('\0');  // offset 0 is the empty string
  index_->extras_.push_back(Extra{0, 0, 0});
  interning_->strings.emplace("", 0);
}

DigestIndex::Builder::~Builder() = default;

uint32_t DigestIndex::Builder::intern(std::string_view s) {
  if (s.empty()) return 0;  // most link targets and capabilities
  if (auto it = interning_->strings.find(s); it != interning_->strings.end()) return it->second;
  const auto offset = static_cast<uint32_t>(index_->arena_.size());
  index_->arena_.append(s);
  index_->arena_.push_back('\0');
  interning_->strings.emplace(std::string(s), offset);
  return offset;
}

uint32_t DigestIndex::Builder::intern_dir(std::string_view dir) {
  if (auto it = interning_->dirs.find(dir); it != interning_->dirs.end()) return it->second;
  const auto id = static_cast<uint32_t>(index_->dirs_.size());
  index_->dirs_.push_back(intern(dir));
  interning_->dirs.emplace(std::string(dir), id);
  return id;
}

// A path the earlier snapshot has keeps its name's offset: records of one path must share
// their dir id and name offset (that is what makes them one path).
uint32_t DigestIndex::Builder::intern_name(std::string_view dir, std::string_view name) {
  if (earlier_) {
    if (auto r = earlier_->first_record(dir, name)) return earlier_->records_[*r].name;
  }
  return intern(name);
}

std::optional<uint16_t> DigestIndex::Builder::intern_owner(std::string_view user,
                                                           std::string_view group) {
  const uint64_t key = uint64_t{intern(user)} << 32 | intern(group);
  if (auto it = interning_->owners.find(key); it != interning_->owners.end()) return it->second;
  if (index_->owners_.size() > std::numeric_limits<uint16_t>::max()) return std::nullopt;
  const auto owner = static_cast<uint16_t>(index_->owners_.size());
  interning_->owners.emplace(key, owner);
  index_->owners_.push_back(Owner{static_cast<uint32_t>(key >> 32), static_cast<uint32_t>(key)});
  return owner;
}

void DigestIndex::Builder::reserve(size_t files) {
  index_->records_.reserve(files);
  interning_->strings.reserve(files);
}

uint32_t DigestIndex::Builder::start_package(PackageRecord package, size_t files) {
  const auto package_id = static_cast<uint32_t>(index_->packages_.size());
  package.file_count = static_cast<uint32_t>(files);
  index_->packages_.push_back(std::move(package));
  return package_id;
}

void DigestIndex::Builder::keep_from(std::shared_ptr<const DigestIndex> earlier,
                                     const std::vector<uint32_t>& packages) {
  DigestIndex& ix = *index_;
  const DigestIndex& old = *earlier;
  ix.arena_ = old.arena_;
  ix.dirs_ = old.dirs_;
  ix.owners_ = old.owners_;
  ix.extras_ = old.extras_;
  ix.compact_arena_bytes_ = old.compact_arena_bytes_;
  interning_->dirs.reserve(old.dirs_.size());
  for (uint32_t d = 0; d < old.dirs_.size(); ++d)
    interning_->dirs.emplace(old.str(old.dirs_[d]), d);
  // Owners are few and every package names them: their strings are found again, not added.
  for (uint32_t o = 0; o < old.owners_.size(); ++o) {
    interning_->owners.emplace(uint64_t{old.owners_[o].user} << 32 | old.owners_[o].group, o);
    interning_->strings.emplace(old.str(old.owners_[o].user), old.owners_[o].user);
    interning_->strings.emplace(old.str(old.owners_[o].group), old.owners_[o].group);
  }
  renumbered_.assign(old.packages_.size(), kNotKept);
  for (uint32_t p : packages) {
    renumbered_[p] = start_package(old.packages_[p], old.packages_[p].file_count);
  }
  ix.reused_ = packages.size();
  earlier_ = std::move(earlier);
}

bool DigestIndex::Builder::add_package(PackageRecord package,
                                       const std::vector<PackagedFile>& files) {
  if (index_->packages_.size() >= kMaxPackages) return false;
  const size_t records_before = index_->records_.size();
  const uint32_t package_id = start_package(std::move(package), files.size());
  // A package lists a directory's files together, from one string: its id is looked up once.
  std::string_view last_dir;
  uint32_t dir_id = 0;
  for (const PackagedFile& f : files) {
    if (f.dir.data() != last_dir.data() || f.dir.size() != last_dir.size()) {
      dir_id = intern_dir(f.dir);
      last_dir = f.dir;
    }
    Record r{};
    r.size = f.size;
    r.dir = dir_id;
    r.name = intern_name(f.dir, f.name);
    r.digest = static_cast<uint32_t>(index_->arena_.size());
    r.digest_len = static_cast<uint8_t>(f.digest.size());
    index_->arena_.append(f.digest);
    const auto owner = intern_owner(f.user, f.group);
    if (!owner) {
      // Strings and owners interned so far stay, unused; the package leaves no record.
      index_->records_.resize(records_before);
      index_->packages_.pop_back();
      return false;
    }
    r.owner = *owner;
    if (!f.linkto.empty() || !f.caps.empty() || f.rdev != 0) {
      r.extra = static_cast<uint32_t>(index_->extras_.size());
      index_->extras_.push_back(Extra{intern(f.linkto), intern(f.caps), f.rdev});
    }
    r.package = static_cast<uint16_t>(package_id);
    r.mtime = f.mtime;
    r.mode = f.mode;
    r.attrs = f.attrs;
    r.verify_flags = f.verify_flags;
    r.state = f.state;
    index_->records_.push_back(r);
  }
  return true;
}

void DigestIndex::Builder::add_rejected(RejectedHeader rejected) {
  index_->rejected_.push_back(std::move(rejected));
}

std::shared_ptr<const DigestIndex> DigestIndex::Builder::build(uint64_t generation) {
  interning_.reset();  // the snapshot keeps only the arena
  DigestIndex& ix = *index_;
  ix.generation_ = generation;
  ix.arena_.shrink_to_fit();
  ix.dirs_.shrink_to_fit();
  ix.owners_.shrink_to_fit();
  ix.extras_.shrink_to_fit();
  if (!earlier_) ix.compact_arena_bytes_ = ix.arena_.size();

  // Sorted by path, so claims on one path sit together and listings are stable.
  // Directories ranked once by name, so that ordering the records compares names only
  // within a directory.
  std::vector<uint32_t> by_name(ix.dirs_.size());
  for (uint32_t d = 0; d < by_name.size(); ++d) by_name[d] = d;
  std::sort(by_name.begin(), by_name.end(), [&ix](uint32_t a, uint32_t b) {
    return std::strcmp(ix.str(ix.dirs_[a]), ix.str(ix.dirs_[b])) < 0;
  });
  std::vector<uint32_t> rank(ix.dirs_.size());
  for (uint32_t r = 0; r < by_name.size(); ++r) rank[by_name[r]] = r;
  auto by_path = [&ix, &rank](const Record& a, const Record& b) {
    if (a.dir != b.dir) return rank[a.dir] < rank[b.dir];
    if (a.name != b.name) return std::strcmp(ix.str(a.name), ix.str(b.name)) < 0;
    return a.package < b.package;
  };
  // Packages often arrive in order (rpm lists a package's files by path): then checking is
  // all the sort costs.
  auto& added = ix.records_;
  if (!std::is_sorted(added.begin(), added.end(), by_path)) {
    std::sort(added.begin(), added.end(), by_path);
  }
  if (earlier_) {
    // The records kept are in order already: merged with the new ones in one pass.
    std::vector<Record> merged;
    size_t kept = 0;
    for (uint32_t p : renumbered_) kept += p == kNotKept ? 0 : earlier_->packages_[p].file_count;
    merged.reserve(kept + added.size());
    auto next = added.begin();
    for (Record r : earlier_->records_) {
      if (renumbered_[r.package] == kNotKept) continue;
      r.package = static_cast<uint16_t>(renumbered_[r.package]);
      for (; next != added.end() && by_path(*next, r); ++next) merged.push_back(*next);
      merged.push_back(r);
    }
    merged.insert(merged.end(), next, added.end());
    added = std::move(merged);
    earlier_.reset();
  }
  auto& recs = ix.records_;
  recs.shrink_to_fit();

  // Open addressing over the first record of each path, at most three quarters full.
  size_t paths = 0;
  for (uint32_t i = 0; i < recs.size(); ++i) paths += i == 0 || !ix.same_path(i, i - 1);
  size_t slots = 16;
  while (slots * 3 < paths * 4) slots <<= 1;
  ix.slots_.assign(slots, kEmptySlot);
  const size_t mask = slots - 1;
  std::vector<uint64_t> dir_hashes(ix.dirs_.size());
  for (uint32_t d = 0; d < dir_hashes.size(); ++d) dir_hashes[d] = hash_of(ix.str(ix.dirs_[d]));
  for (uint32_t i = 0; i < recs.size(); ++i) {
    if (i > 0 && ix.same_path(i, i - 1)) continue;
    size_t s = path_hash_of(dir_hashes[recs[i].dir], ix.str(recs[i].name)) & mask;
    while (ix.slots_[s] != kEmptySlot) s = (s + 1) & mask;
    ix.slots_[s] = i;
  }
  std::sort(ix.rejected_.begin(), ix.rejected_.end(),
            [](const RejectedHeader& a, const RejectedHeader& b) {
              return std::tie(a.origin, a.nevra) < std::tie(b.origin, b.nevra);
            });
  return std::shared_ptr<const DigestIndex>(index_.release());
}

}  // namespace digestfs
