#include "cache/index_loader.hpp"

#include <fcntl.h>
#include <rpm/rpmcli.h>
#include <rpm/rpmlib.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_invoke.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <variant>

#include "cache/file_hasher.hpp"
#include "cache/header_files.hpp"
#include "cache/header_verifier.hpp"
#include "cache/rpm_library.hpp"
#include "cache/signed_region.hpp"
#include "src/base/hex.hpp"
#include "src/base/unique_fd.hpp"

namespace digestfs {
namespace {

using HeaderKey = std::array<unsigned char, 32>;

// A header as it came out of a source, not yet judged.
struct HeaderInput {
  std::string origin;
  std::filesystem::path package_file;  // set for .rpm files: read in the parallel phase
  rpm::HeaderPtr header;               // as librpm read it, with any tags added outside its region
};

struct Judged {
  std::optional<PackageRecord> package;
  HeaderFiles files;
  std::optional<RejectedHeader> rejected;
  std::optional<uint32_t> reuse;  // accepted in the previous snapshot as this package
};

struct HeaderKeyHash {
  size_t operator()(const HeaderKey& k) const {
    size_t h;
    std::memcpy(&h, k.data(), sizeof h);  // already uniformly distributed
    return h;
  }
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

struct DatabaseHeaders {
  std::vector<HeaderInput> headers;
  std::string origin;
  std::string damaged;  // what librpm said about headers it skipped
};

Result<DatabaseHeaders> read_rpmdb(const SourceOptions& options) {
  std::filesystem::path dir = options.root / options.dbpath.relative_path();
  // librpm creates a missing database directory, even to read: held open here, the
  // directory is read as it is, and one that vanished (a restore in progress) is not made
  // again under the administrator's feet.
  UniqueFd dir_fd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd) {
    return Error{ENOENT, "no rpm database at " + dir.string() +
                             " (set the root, or the dbpath relative to it)"};
  }
  rpm::TsPtr ts =
      rpm::make_ts(nullptr, RPMVSF_NOHDRCHK | RPMVSF_MASK_NODIGESTS | RPMVSF_MASK_NOSIGNATURES);
  rpmtsSetRootDir(ts.get(), "/");
  rpm::take_thread_log();
  {
    rpm::ScopedDbPath scoped("/proc/self/fd/" + std::to_string(dir_fd.get()));
    if (rpmtsOpenDB(ts.get(), O_RDONLY) != 0) {
      return Error{EIO, "cannot open rpm database " + dir.string() + ": " + rpm::take_thread_log()};
    }
  }
  DatabaseHeaders out;
  rpm::IteratorPtr it(rpmtsInitIterator(ts.get(), RPMDBI_PACKAGES, nullptr, 0));
  if (!it) {
    std::string why = rpm::take_thread_log();
    return Error{EIO, "cannot read rpm database " + dir.string() +
                          (why.empty() ? std::string(": no package index") : ": " + why)};
  }
  // What librpm said while opening (backend detection, absent secondary indexes) is no
  // verdict on any header; what it says from here on is.
  rpm::take_thread_log();
  while (Header h = rpmdbNextIterator(it.get())) {
    // Keys imported into the database are never trusted implicitly, nor indexed.
    if (const char* name = headerGetString(h, RPMTAG_NAME);
        name && std::string_view(name) == "gpg-pubkey") {
      continue;
    }
    HeaderInput in;
    in.origin = "rpmdb:" + dir.string() + "#" + std::to_string(rpmdbGetIteratorOffset(it.get()));
    in.header.reset(headerLink(h));
    out.headers.push_back(std::move(in));
  }
  it.reset();
  rpmtsCloseDB(ts.get());
  // librpm skips a header it cannot read, with a message: that becomes a rejection too.
  out.damaged = rpm::take_thread_log();
  out.origin = "rpmdb:" + dir.string();
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

using ReusableHeaders = std::unordered_map<HeaderKey, uint32_t, HeaderKeyHash>;

Judged judge(Worker& w, HeaderInput& in, bool allow_weak, const ReusableHeaders& reusable) {
  Judged out;
  const bool from_database = in.package_file.empty();
  if (!from_database) {
    if (auto rejected = read_package_file(w, in)) {
      out.rejected = std::move(rejected);
      return out;
    }
    if (!in.header) return out;  // a source package: nothing it installs
  }
  // The signature check, and the key that finds an unchanged header, read the header as
  // exported.
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
  if (from_database && !reusable.empty()) {
    export_header();
    if (auto hit = reusable.find(key); blob && hit != reusable.end()) {
      out.reuse = hit->second;
      return out;
    }
  }
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
      PackageRecord{nevra, in.origin, assessment.signer, files->digest_algo, 0, key, region_sha256};

  out.files = std::move(files.value());
  return out;
}

}  // namespace

Result<std::shared_ptr<const DigestIndex>> load_digest_index(const TrustStore& trust,
                                                             const SourceOptions& options,
                                                             uint64_t generation,
                                                             const DigestIndex* previous) {
  rpm::ensure_initialized();
  std::vector<HeaderInput> inputs;
  DigestIndex::Builder builder;
  if (options.read_rpmdb) {
    auto db = read_rpmdb(options);
    if (!db) return db.error();
    inputs = std::move(db->headers);
    if (!db->damaged.empty()) {
      builder.add_rejected(
          rejection("(unreadable)", db->origin, HeaderVerdict::Malformed, db->damaged));
    }
  }
  auto files = list_package_files(options.packages);
  if (!files) return files.error();
  for (const auto& file : files.value()) {
    HeaderInput in;
    in.origin = file.string();
    in.package_file = file;
    inputs.push_back(std::move(in));
  }

  // Database headers that the previous snapshot accepted, by their exact bytes: their
  // verdict and files are taken from it rather than verified and read again.
  ReusableHeaders reusable;
  std::vector<std::vector<uint32_t>> previous_records;
  if (previous) {
    builder.reserve(previous->file_count());
    previous_records = previous->records_by_package();
    for (uint32_t p = 0; p < previous->packages().size(); ++p) {
      reusable.emplace(previous->packages()[p].header_key, p);
    }
  }

  // Judged in batches and merged at once: transient per-header data stays small, so the heap
  // the snapshot is built in is not left fragmented by a whole database's worth of it.
  constexpr size_t kBatch = 64;
  std::vector<Judged> judged(kBatch);
  tbb::enumerable_thread_specific<Worker> workers([&trust] { return Worker(trust.keyring()); });
  tbb::task_arena arena(options.jobs ? static_cast<int>(options.jobs) : tbb::task_arena::automatic);
  for (size_t begin = 0; begin < inputs.size(); begin += kBatch) {
    const size_t end = std::min(inputs.size(), begin + kBatch);
    arena.execute([&] {
      tbb::parallel_for(begin, end, [&](size_t i) {
        judged[i - begin] = judge(workers.local(), inputs[i], options.allow_weak_digests, reusable);
        inputs[i].header.reset();
      });
    });
    for (size_t i = 0; i < end - begin; ++i) {
      Judged& j = judged[i];
      if (j.rejected) builder.add_rejected(std::move(*j.rejected));
      if (j.package) builder.add_package(std::move(*j.package), j.files.files);
      if (j.reuse) builder.add_from(*previous, *j.reuse, previous_records[*j.reuse]);
      j = Judged{};
    }
  }
  return builder.build(generation);
}

}  // namespace digestfs
