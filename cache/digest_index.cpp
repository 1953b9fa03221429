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

// FNV-1a, fed in pieces so that "dir/" + "name" hashes like the joined path.
constexpr uint64_t kFnvOffset = 14695981039346656037ull;
uint64_t fnv1a(uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
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
std::string_view FileEntry::user() const { return index_->str(index_->records_[record_].user); }
std::string_view FileEntry::group() const { return index_->str(index_->records_[record_].group); }
std::string_view FileEntry::linkto() const { return index_->str(index_->records_[record_].linkto); }
std::string_view FileEntry::caps() const { return index_->str(index_->records_[record_].caps); }
uint32_t FileEntry::mtime() const { return index_->records_[record_].mtime; }
uint32_t FileEntry::rdev() const { return index_->records_[record_].rdev; }
uint16_t FileEntry::attrs() const { return index_->records_[record_].attrs; }
uint16_t FileEntry::verify_flags() const { return index_->records_[record_].verify_flags; }
int8_t FileEntry::state() const { return index_->records_[record_].state; }
const PackageRecord& FileEntry::package() const {
  return index_->packages_[index_->records_[record_].package];
}
bool FileEntry::is_config() const { return attrs() & RPMFILE_CONFIG; }
bool FileEntry::is_ghost() const { return attrs() & RPMFILE_GHOST; }

// ---- DigestIndex ----

uint64_t DigestIndex::path_hash(uint32_t record) const {
  const Record& r = records_[record];
  return fnv1a(fnv1a(kFnvOffset, str(dirs_[r.dir])), str(r.name));
}

bool DigestIndex::same_path(uint32_t a, uint32_t b) const {
  return records_[a].dir == records_[b].dir && records_[a].name == records_[b].name;
}

bool DigestIndex::same_content(uint32_t a, uint32_t b) const {
  const Record& x = records_[a];
  const Record& y = records_[b];
  return x.mode == y.mode && x.linkto == y.linkto && entry(a).digest() == entry(b).digest();
}

EntryRange DigestIndex::lookup(std::string_view path) const {
  if (slots_.empty()) return {this, 0, 0};
  auto [dir, name] = split_path(path);
  const size_t mask = slots_.size() - 1;
  for (size_t i = fnv1a(fnv1a(kFnvOffset, dir), name) & mask;; i = (i + 1) & mask) {
    uint32_t first = slots_[i];
    if (first == kEmptySlot) return {this, 0, 0};
    const Record& r = records_[first];
    if (str(r.name) != name || str(dirs_[r.dir]) != dir) continue;
    uint32_t end = first + 1;
    while (end < records_.size() && same_path(end, first)) ++end;
    return {this, first, end - first};
  }
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

std::vector<std::vector<uint32_t>> DigestIndex::records_by_package() const {
  std::vector<std::vector<uint32_t>> out(packages_.size());
  for (size_t p = 0; p < packages_.size(); ++p) out[p].reserve(packages_[p].file_count);
  for (uint32_t i = 0; i < records_.size(); ++i) out[records_[i].package].push_back(i);
  return out;
}

size_t DigestIndex::memory_bytes() const {
  size_t bytes = records_.capacity() * sizeof(Record) + dirs_.capacity() * sizeof(uint32_t) +
                 slots_.capacity() * sizeof(uint32_t) + arena_.capacity();
  for (const auto& p : packages_) {
    bytes += sizeof(p) + p.nevra.capacity() + p.origin.capacity() + p.signer.capacity();
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
};

DigestIndex::Builder::Builder()
    : interning_(std::make_unique<Interning>()), index_(new DigestIndex()) {
  index_->arena_.push_back('\0');  // offset 0 is the empty string
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

void DigestIndex::Builder::add_from(const DigestIndex& earlier, uint32_t package,
                                    const std::vector<uint32_t>& records) {
  const uint32_t package_id = start_package(earlier.packages_[package], records.size());
  ++index_->reused_;
  for (uint32_t i : records) {
    Record r = earlier.records_[i];
    r.dir = intern_dir(earlier.str(earlier.dirs_[r.dir]));
    r.name = intern(earlier.str(r.name));
    const uint32_t digest = static_cast<uint32_t>(index_->arena_.size());
    index_->arena_.append(earlier.str(r.digest), r.digest_len);
    r.digest = digest;
    r.user = intern(earlier.str(r.user));
    r.group = intern(earlier.str(r.group));
    r.linkto = intern(earlier.str(r.linkto));
    r.caps = intern(earlier.str(r.caps));
    r.package = package_id;
    index_->records_.push_back(r);
  }
}

void DigestIndex::Builder::add_package(PackageRecord package,
                                       const std::vector<PackagedFile>& files) {
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
    r.name = intern(f.name);
    r.digest = static_cast<uint32_t>(index_->arena_.size());
    r.digest_len = static_cast<uint8_t>(f.digest.size());
    index_->arena_.append(f.digest);
    r.user = intern(f.user);
    r.group = intern(f.group);
    r.linkto = intern(f.linkto);
    r.caps = intern(f.caps);
    r.package = package_id;
    r.mtime = f.mtime;
    r.rdev = f.rdev;
    r.mode = f.mode;
    r.attrs = f.attrs;
    r.verify_flags = f.verify_flags;
    r.state = f.state;
    index_->records_.push_back(r);
  }
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

  // Sorted by path, so claims on one path sit together and listings are stable.
  auto& recs = ix.records_;
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
  // Records often arrive in this order already (rpm lists a package's files by path, which
  // mostly is this order): then checking is all the sort costs.
  if (!std::is_sorted(recs.begin(), recs.end(), by_path)) {
    std::sort(recs.begin(), recs.end(), by_path);
  }
  recs.shrink_to_fit();

  size_t slots = 16;
  while (slots < recs.size() * 2) slots <<= 1;
  ix.slots_.assign(slots, kEmptySlot);
  const size_t mask = slots - 1;
  for (uint32_t i = 0; i < recs.size(); ++i) {
    if (i > 0 && ix.same_path(i, i - 1)) continue;
    size_t s = ix.path_hash(i) & mask;
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
