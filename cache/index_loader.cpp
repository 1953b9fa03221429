#include "cache/index_loader.hpp"

#include <rpm/rpmcli.h>
#include <rpm/rpmlib.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_invoke.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <array>
#include <functional>
#include <optional>
#include <set>

#include "cache/file_hasher.hpp"
#include "cache/header_files.hpp"
#include "cache/header_verifier.hpp"
#include "cache/package_database.hpp"
#include "cache/rpm_library.hpp"
#include "cache/signed_region.hpp"
#include "src/base/hex.hpp"

namespace digestfs {
namespace {

using HeaderKey = std::array<unsigned char, 32>;

// A header as it came out of a source, not yet judged.
struct HeaderInput {
  std::string origin;
  std::filesystem::path package_file;  // set for .rpm files: read in the parallel phase
  rpm::HeaderPtr header;               // as librpm read it, with any tags added outside its region
  unsigned instance = 0;               // set for database headers
};

struct Judged {
  std::optional<PackageRecord> package;
  HeaderFiles files;
  std::optional<RejectedHeader> rejected;
};

std::string nevra_of(Header h) {
  rpm::Malloced<char> s(headerGetAsString(h, RPMTAG_NEVRA));
  return s ? s.get() : "(unnamed)";
}

// The SHA-256 of the signed region as rpm recorded it beside the region (the check verifies
// it); all zero for headers made before rpm had it.
std::array<unsigned char, 32> recorded_region_sha256(Header h) {
  std::array<unsigned char, 32> out{};
  if (const char* digest = headerGetString(h, RPMTAG_SHA256HEADER)) {
    if (auto bytes = from_hex(digest); bytes && bytes->size() == out.size()) {
      std::copy(bytes->begin(), bytes->end(), out.begin());
    }
  }
  return out;
}

Result<std::vector<std::filesystem::path>> list_package_files(
    const std::vector<std::filesystem::path>& sources) {
  std::vector<std::filesystem::path> files;
  for (const auto& source : sources) {
    std::error_code ec;
    if (std::filesystem::is_directory(source, ec)) {
      std::vector<std::filesystem::path> found;
      for (const auto& entry : std::filesystem::directory_iterator(source, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.ends_with(".rpm") && !name.ends_with(".src.rpm")) found.push_back(entry.path());
      }
      if (ec)
        return Error{ec.value(), "package directory " + source.string() + ": " + ec.message()};
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (std::filesystem::exists(source, ec)) {
      files.push_back(source);
    } else {
      return Error{ENOENT, "package source " + source.string() + ": no such file or directory"};
    }
  }
  return files;
}

// Per-thread librpm state: transaction sets are not safe to share between threads.
struct Worker {
  explicit Worker(rpmKeyring keyring)
      : verifier(keyring),
        reader(rpm::make_ts(keyring, RPMVSF_MASK_NODIGESTS | RPMVSF_MASK_NOSIGNATURES)),
        payload(rpm::make_ts(keyring, 0)) {
    // The header is judged by the verifier; here only the payload's own digests matter.
    rpmtsSetVfyFlags(payload.get(), RPMVSF_MASK_NOHEADER | RPMVSF_NODSA | RPMVSF_NORSA);
    rpmtsSetVfyLevel(payload.get(), RPMSIG_DIGEST_TYPE);
  }
  HeaderVerifier verifier;
  rpm::TsPtr reader;
  rpm::TsPtr payload;
};

RejectedHeader rejection(std::string nevra, const std::string& origin, HeaderVerdict verdict,
                         std::string reason) {
  return RejectedHeader{std::move(nevra), origin, verdict, std::move(reason)};
}

// Reads a .rpm file's header into in.header; returns the rejection when it cannot be used.
std::optional<RejectedHeader> read_package_file(Worker& w, HeaderInput& in) {
  const std::string fn = in.package_file.string();
  rpm::FdPtr fd(Fopen(fn.c_str(), "r.ufdio"));
  if (!fd || Ferror(fd.get())) {
    return rejection("(unreadable)", in.origin, HeaderVerdict::Malformed,
                     std::string("cannot open: ") + Fstrerror(fd.get()));
  }
  rpm::take_thread_log();
  Header raw = nullptr;
  rpmRC rc = rpmReadPackageFile(w.reader.get(), fd.get(), fn.c_str(), &raw);
  rpm::HeaderPtr h(raw);
  if (rc != RPMRC_OK || !h) {
    std::string why = rpm::take_thread_log();
    return rejection("(unreadable)", in.origin, HeaderVerdict::Malformed,
                     why.empty() ? "not a readable rpm package" : why);
  }
  if (headerIsSource(h.get())) return std::nullopt;
  Fseek(fd.get(), 0, SEEK_SET);
  struct rpmQVKArguments_s qva = {};
  if (rpmVerifySignatures(&qva, w.payload.get(), fd.get(), fn.c_str()) != 0) {
    std::string why = rpm::take_thread_log();
    return rejection(nevra_of(h.get()), in.origin, HeaderVerdict::Corrupted,
                     "payload digest does not match" + (why.empty() ? "" : ": " + why));
  }
  in.header = std::move(h);
  return std::nullopt;
}

Judged judge(Worker& w, HeaderInput& in, bool allow_weak) {
  Judged out;
  const bool from_database = in.instance != 0;
  if (!from_database) {
    if (auto rejected = read_package_file(w, in)) {
      out.rejected = std::move(rejected);
      return out;
    }
    if (!in.header) return out;  // a source package: nothing it installs
  }
  // The signature check reads the header as exported.
  rpm::Malloced<void> blob;
  unsigned size = 0;
  HeaderKey key{};
  auto export_header = [&] {
    blob.reset(headerExport(in.header.get(), &size));
    const auto hashed = blob ? sha256_of(blob.get(), size) : std::nullopt;
    if (hashed)
      key = *hashed;
    else
      blob.reset();
  };
  // Exporting sorts the header in place: all else that is read from the header itself is
  // read before the export can run on another thread.
  rpm::HeaderPtr region = signed_region(in.header.get());
  if (!region) {
    out.rejected = rejection(nevra_of(in.header.get()), in.origin, HeaderVerdict::Malformed,
                             "the header has no signed (immutable) region");
    return out;
  }
  const std::string nevra = nevra_of(region.get());
  const auto signature = HeaderVerifier::signature_of(in.header.get());
  const std::vector<int8_t> states = install_states(in.header.get());
  const auto region_sha256 = recorded_region_sha256(in.header.get());
  const char* sha1 = from_database ? headerGetString(in.header.get(), RPMTAG_SHA1HEADER) : nullptr;
  // The check runs beside the reading of the file list (which, for a package of many files,
  // takes longer); the list is dropped if the check fails.
  HeaderAssessment assessment;
  Result<HeaderFiles> files = HeaderFiles{};
  tbb::parallel_invoke([&] { files = read_header_files(region.get(), states); },
                       [&] {
                         if (!blob) export_header();
                         if (blob) assessment = w.verifier.assess(blob.get(), size, signature);
                       });
  if (!blob) {
    out.rejected = rejection(nevra, in.origin, HeaderVerdict::Malformed,
                             "librpm cannot export the header, or it cannot be hashed");
    return out;
  }
  if (assessment.verdict != HeaderVerdict::Accepted) {
    out.rejected = rejection(nevra, in.origin, assessment.verdict, assessment.reason);
    return out;
  }
  if (!files) {
    out.rejected = rejection(nevra, in.origin, HeaderVerdict::Malformed, files.error().message);
    return out;
  }
  if (files->has_regular_files && digest_algo::is_weak(files->digest_algo) && !allow_weak) {
    out.rejected =
        rejection(nevra, in.origin, HeaderVerdict::WeakDigest,
                  "file digests use " + std::string(digest_algo::name(files->digest_algo)) +
                      " (allow weak digests to trust them)");
    return out;
  }
  out.package =
      PackageRecord{nevra, in.origin, assessment.signer, files->digest_algo, 0, key, region_sha256,
                    in.instance, sha1 ? sha1 : ""};
  out.files = std::move(files.value());
  return out;
}

void add_inputs(std::vector<HeaderInput>& inputs, const PackageDatabase& db,
                std::vector<DatabaseHeader> headers) {
  for (DatabaseHeader& h : headers) {
    HeaderInput in;
    in.origin = db.origin(h.instance);
    in.header = std::move(h.header);
    in.instance = h.instance;
    inputs.push_back(std::move(in));
  }
}

// Judges every input on the arena's threads, handing each verdict to `take` in the inputs'
// order. In batches: transient per-header data stays small, so the heap the snapshot is
// built in is not left fragmented by a whole database's worth of it.
class Judging {
 public:
  Judging(const TrustStore& trust, const SourceOptions& options)
      : workers_([&trust] { return Worker(trust.keyring()); }),
        arena_(options.jobs ? static_cast<int>(options.jobs) : tbb::task_arena::automatic),
        allow_weak_(options.allow_weak_digests) {}

  void run(std::vector<HeaderInput>& inputs, const std::function<void(Judged&)>& take) {
    constexpr size_t kBatch = 64;
    std::vector<Judged> judged(kBatch);
    for (size_t begin = 0; begin < inputs.size(); begin += kBatch) {
      const size_t end = std::min(inputs.size(), begin + kBatch);
      arena_.execute([&] {
        tbb::parallel_for(begin, end, [&](size_t i) {
          judged[i - begin] = judge(workers_.local(), inputs[i], allow_weak_);
          inputs[i].header.reset();
        });
      });
      for (size_t i = 0; i < end - begin; ++i) {
        take(judged[i]);
        judged[i] = Judged{};
      }
    }
  }

 private:
  tbb::enumerable_thread_specific<Worker> workers_;
  tbb::task_arena arena_;
  bool allow_weak_;
};

void add_judged(DigestIndex::Builder& builder, Judged& j) {
  if (j.rejected) builder.add_rejected(std::move(*j.rejected));
  if (!j.package) return;
  const std::string nevra = j.package->nevra, origin = j.package->origin;
  if (!builder.add_package(std::move(*j.package), j.files.files)) {
    builder.add_rejected(rejection(nevra, origin, HeaderVerdict::Malformed,
                                   "one index holds at most " +
                                       std::to_string(DigestIndex::kMaxPackages) +
                                       " packages and as many distinct file owners"));
  }
}

// A reload of the database: the previous snapshot's packages whose headers are still there
// under the same instance and recorded digest are kept as they are, and only the other
// headers are read and judged. rpm rewrites a header in place, under the same identity, when
// another package takes over one of its files (the file states, outside the signed region):
// packages sharing a path with a newly read one are read again too. A header changed in place
// otherwise (only a hand-edited database does that) keeps what was verified for it before; a
// load from scratch, at start and whenever the snapshot is compacted, reads it as it is.
void reload_database(const PackageDatabase& db, const std::map<unsigned, std::string>& identities,
                     std::shared_ptr<const DigestIndex> previous, Judging& judging,
                     std::vector<HeaderInput>& package_files, DigestIndex::Builder& builder,
                     std::string& damaged) {
  std::map<unsigned, uint32_t> kept;  // instance -> previous package
  for (uint32_t p = 0; p < previous->packages().size(); ++p) {
    const PackageRecord& record = previous->packages()[p];
    if (record.instance == 0 || record.origin != db.origin(record.instance)) continue;
    auto identity = identities.find(record.instance);
    if (identity != identities.end() && !identity->second.empty() &&
        identity->second == record.sha1_header) {
      kept.emplace(record.instance, p);
    }
  }
  std::vector<unsigned> changed;
  for (const auto& [instance, sha1] : identities) {
    if (!kept.contains(instance)) changed.push_back(instance);
  }
  std::vector<HeaderInput> inputs;
  if (auto headers = db.read(&changed, damaged)) add_inputs(inputs, db, std::move(*headers));
  std::vector<Judged> judged;
  judging.run(inputs, [&](Judged& j) { judged.push_back(std::move(j)); });

  std::set<unsigned> touched;
  for (const Judged& j : judged) {
    if (!j.package) continue;
    for (const PackagedFile& f : j.files.files) {
      std::string path(f.dir);
      path += f.name;
      for (FileEntry claim : previous->lookup(path)) {
        if (auto k = kept.find(claim.package().instance);
            k != kept.end() && &previous->packages()[k->second] == &claim.package()) {
          touched.insert(k->first);
        }
      }
    }
  }
  std::vector<unsigned> again(touched.begin(), touched.end());
  for (unsigned instance : again) kept.erase(instance);
  inputs.clear();
  if (auto headers = db.read(&again, damaged)) add_inputs(inputs, db, std::move(*headers));
  judging.run(inputs, [&](Judged& j) { judged.push_back(std::move(j)); });

  std::vector<uint32_t> kept_packages;
  for (const auto& [instance, p] : kept) kept_packages.push_back(p);
  std::sort(kept_packages.begin(), kept_packages.end());
  builder.keep_from(std::move(previous), kept_packages);
  for (Judged& j : judged) add_judged(builder, j);
  judging.run(package_files, [&](Judged& j) { add_judged(builder, j); });
}

// The Debian source, after the rpm ones; a sealed cache it had to set aside (or could not
// write) is reported like a rejected header, so that it shows wherever rejections do.
Result<void> add_debian(const TrustStore& trust, const SourceOptions& options,
                        DigestIndex::Builder& builder) {
  if (!options.debian.enabled()) return {};
  auto stats = add_debian_packages(trust, options.root, options.debian, options.jobs, builder);
  if (!stats) return stats.error();
  if (!stats->cache_problem.empty()) {
    RejectedHeader cache =
        rejection("(cache)", options.debian.cache.string(), HeaderVerdict::Corrupted,
                  "sealed cache " + stats->cache_problem);
    cache.kind = PackageKind::Deb;
    builder.add_rejected(std::move(cache));
  }
  return {};
}

}  // namespace

Result<std::shared_ptr<const DigestIndex>> load_digest_index(
    const TrustStore& trust, const SourceOptions& options, uint64_t generation,
    std::shared_ptr<const DigestIndex> previous) {
  rpm::ensure_initialized();
  auto listed = list_package_files(options.packages);
  if (!listed) return listed.error();
  std::vector<HeaderInput> package_files;
  for (const auto& file : listed.value()) {
    HeaderInput in;
    in.origin = file.string();
    in.package_file = file;
    package_files.push_back(std::move(in));
  }
  Judging judging(trust, options);
  DigestIndex::Builder builder;
  std::string damaged;
  std::optional<PackageDatabase> db;
  if (options.read_rpmdb) {
    auto opened = PackageDatabase::open(options.root, options.dbpath);
    if (!opened) return opened.error();
    db.emplace(std::move(opened.value()));
  }
  // Once dropped packages have left enough unused strings behind, the snapshot is built
  // from scratch instead of from the previous one.
  if (previous && previous->worth_compacting()) previous.reset();
  if (db && previous) {
    if (auto identities = db->identities()) {
      reload_database(*db, *identities, std::move(previous), judging, package_files, builder,
                      damaged);
      if (!damaged.empty()) {
        builder.add_rejected(
            rejection("(unreadable)", db->origin(), HeaderVerdict::Malformed, damaged));
      }
      if (auto debian = add_debian(trust, options, builder); !debian) return debian.error();
      return builder.build(generation);
    }
  }
  if (previous) builder.reserve(previous->file_count());
  std::vector<HeaderInput> inputs;
  if (db) {
    auto headers = db->read(nullptr, damaged);
    if (!headers) return headers.error();
    add_inputs(inputs, *db, std::move(*headers));
    if (!damaged.empty()) {
      builder.add_rejected(
          rejection("(unreadable)", db->origin(), HeaderVerdict::Malformed, damaged));
    }
  }
  judging.run(inputs, [&](Judged& j) { add_judged(builder, j); });
  judging.run(package_files, [&](Judged& j) { add_judged(builder, j); });
  if (auto debian = add_debian(trust, options, builder); !debian) return debian.error();
  return builder.build(generation);
}

}  // namespace digestfs
