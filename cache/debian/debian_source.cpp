#include "cache/debian/debian_source.hpp"

#include <rpm/rpmfiles.h>
#include <rpm/rpmpgp.h>
#include <sys/stat.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <set>

#include "cache/debian/archive_indices.hpp"
#include "cache/debian/deb_contents.hpp"
#include "cache/debian/dpkg_status.hpp"
#include "cache/debian/sealed_deb_cache.hpp"
#include "src/base/hex.hpp"

namespace digestfs {
namespace {

std::filesystem::path under_root(const std::filesystem::path& root, const char* path) {
  return root / std::filesystem::path(path).relative_path();
}

// Top-level directories of the root that are symlinks into /usr (merged /usr: /bin ->
// usr/bin): a package's ./bin/sh is installed at /usr/bin/sh, and is found there.
std::map<std::string, std::string> merged_usr(const std::filesystem::path& root) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    if (!entry.is_symlink(ec)) continue;
    auto name = entry.path().filename().string();
    auto target = std::filesystem::read_symlink(entry.path(), ec).string();
    if (target == "usr/" + name || target == "/usr/" + name) out["/" + name] = "/usr/" + name;
  }
  return out;
}

std::string installed_at(const std::map<std::string, std::string>& aliases,
                         const std::string& path) {
  auto slash = path.find('/', 1);
  auto it = aliases.find(path.substr(0, slash));
  return it == aliases.end() ? path : it->second + path.substr(it->first.size());
}

// apt names a downloaded .deb name_version_arch.deb with the epoch's ':' as "%3a".
std::vector<std::string> deb_names(const InstalledPackage& p, const DebStanza& stanza) {
  std::vector<std::string> out;
  auto slash = stanza.filename.rfind('/');
  out.push_back(slash == std::string::npos ? stanza.filename : stanza.filename.substr(slash + 1));
  std::string version = p.version;
  if (auto colon = version.find(':'); colon != std::string::npos) version.replace(colon, 1, "%3a");
  out.push_back(p.name + "_" + version + "_" + p.architecture + ".deb");
  return out;
}

// How reports name a Debian package: as its .deb is named, with the version as dpkg has it.
std::string package_name(const InstalledPackage& p) {
  return p.name + "_" + p.version + "_" + p.architecture;
}

RejectedHeader rejected(std::string name, std::string origin, HeaderVerdict verdict,
                        std::string reason) {
  return {std::move(name), std::move(origin), verdict, std::move(reason), PackageKind::Deb};
}

// One installed package on its way into the index.
struct Candidate {
  InstalledPackage package;
  std::vector<DebStanza> stanzas;
  std::filesystem::path deb;
  const DebContents* contents = nullptr;  // from the cache, or `read` below
  std::optional<Result<DebContents>> read;
};

std::optional<DebStanza> matching_stanza(const Candidate& c, const Sha256& sha) {
  std::string hex = to_hex(sha);
  for (const auto& s : c.stanzas)
    if (s.sha256 == hex) return s;
  return std::nullopt;
}

void add_package(DigestIndex::Builder& builder, const Candidate& c, const DebStanza& stanza,
                 const DebContents& contents, const std::map<std::string, Diversion>& diversions,
                 const std::map<std::string, std::string>& aliases) {
  PackageRecord record;
  record.nevra = package_name(c.package);
  record.kind = PackageKind::Deb;
  record.origin = c.deb.string();
  record.signer =
      stanza.signer.size() > 16 ? stanza.signer.substr(stanza.signer.size() - 16) : stanza.signer;
  std::transform(record.signer.begin(), record.signer.end(), record.signer.begin(), ::tolower);
  record.digest_algo = digest_algo::kSha256;
  record.file_count = static_cast<uint32_t>(contents.files.size());
  record.header_key = contents.sha256;
  std::vector<std::string> paths;
  paths.reserve(contents.files.size());
  for (const auto& f : contents.files)
    paths.push_back(installed_at(aliases, diverted_path(diversions, c.package.name, f.path)));
  std::vector<PackagedFile> files;
  files.reserve(contents.files.size());
  for (size_t i = 0; i < contents.files.size(); ++i) {
    const DebFile& f = contents.files[i];
    const std::string& path = paths[i];
    auto slash = path.rfind('/');
    PackagedFile pf;
    pf.dir = std::string_view(path).substr(0, slash + 1);
    pf.name = std::string_view(path).substr(slash + 1);
    pf.digest = f.digest;
    pf.user = f.user;
    pf.group = f.group;
    pf.linkto = f.linkto;
    pf.size = f.size;
    pf.mtime = f.mtime;
    pf.mode = f.mode;
    pf.attrs = f.conffile ? RPMFILE_CONFIG : 0;
    // What dpkg --verify checks: the content (a size that differs is a content that does).
    pf.verify_flags = RPMVERIFY_FILEDIGEST | RPMVERIFY_FILESIZE;
    pf.state = RPMFILE_STATE_NORMAL;
    files.push_back(pf);
  }
  builder.add_package(std::move(record), files);
}

}  // namespace

Result<DebianLoadStats> add_debian_packages(const TrustStore& trust,
                                            const std::filesystem::path& root,
                                            const DebianSourceOptions& options, unsigned jobs,
                                            DigestIndex::Builder& builder) {
  DebianLoadStats stats;
  std::vector<std::filesystem::path> key_files;
  for (const auto& k : trust.keys())
    if (key_files.empty() || key_files.back() != k.file) key_files.push_back(k.file);
  auto signatures = ArchiveSignatures::create(key_files);
  if (!signatures) return signatures.error();
  auto indices = read_archive_indices(options.lists, *signatures);
  if (!indices) return indices.error();
  for (const auto& p : indices->problems)
    builder.add_rejected(rejected("(index)", p.file.string(), p.verdict, p.reason));

  auto status = options.status.empty() ? under_root(root, "/var/lib/dpkg/status") : options.status;
  auto installed = read_installed_packages(status);
  if (!installed) return installed.error();
  auto diversions = read_diversions(status.parent_path() / "diversions");
  if (!diversions) return diversions.error();
  auto aliases = merged_usr(root);

  std::vector<std::filesystem::path> dirs = options.debs;
  if (dirs.empty()) dirs.push_back(under_root(root, "/var/cache/apt/archives"));
  std::map<std::string, std::filesystem::path> debs;
  for (const auto& dir : dirs) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec))
      if (e.path().extension() == ".deb") debs.emplace(e.path().filename().string(), e.path());
    if (ec) return Error{ec.value(), ".deb directory " + dir.string() + ": " + ec.message()};
  }

  std::optional<SealedDebCache> cache;
  if (!options.cache.empty()) {
    // Without its key the cache is of no use, but the .debs still are.
    auto opened = SealedDebCache::open(options.cache, options.cache_key, options.tpm);
    if (!opened) {
      stats.cache_problem = "set aside: " + opened.error().message;
    } else {
      cache.emplace(std::move(*opened));
      if (!cache->problem().empty()) stats.cache_problem = "set aside: " + cache->problem();
    }
  }

  std::vector<Candidate> candidates;
  for (const auto& p : *installed) {
    std::string name = package_name(p);
    auto it = indices->stanzas.find(stanza_key(p.name, p.version, p.architecture));
    if (it == indices->stanzas.end()) {
      builder.add_rejected(rejected(name, status.string(), HeaderVerdict::Unsigned,
                                    "installed, but no verified Packages index lists this "
                                    "version: its files are unknown"));
      continue;
    }
    Candidate c{p, it->second, {}, nullptr, std::nullopt};
    for (const auto& s : c.stanzas) {
      for (const auto& file : deb_names(p, s)) {
        if (auto d = debs.find(file); d != debs.end() && c.deb.empty()) c.deb = d->second;
      }
      if (cache && !c.contents) {
        if (auto sha = from_hex(s.sha256); sha && sha->size() == 32) {
          Sha256 key;
          std::copy(sha->begin(), sha->end(), key.begin());
          c.contents = cache->find(key);
        }
      }
    }
    if (c.deb.empty() && !c.contents) {
      builder.add_rejected(rejected(name, status.string(), HeaderVerdict::Unsigned,
                                    "no .deb of this version in the .deb directories: its "
                                    "files are unknown"));
      continue;
    }
    candidates.push_back(std::move(c));
  }

  tbb::task_arena arena(jobs ? static_cast<int>(jobs) : tbb::task_arena::automatic);
  arena.execute([&] {
    tbb::parallel_for(
        size_t{0}, candidates.size(),
        [&](size_t i) {
          Candidate& c = candidates[i];
          if (!c.contents) c.read.emplace(read_deb(c.deb));
        },
        tbb::simple_partitioner());
  });

  std::vector<Sha256> used;
  for (auto& c : candidates) {
    std::string name = package_name(c.package);
    if (c.read) {
      ++stats.debs_read;
      if (!*c.read) {
        builder.add_rejected(
            rejected(name, c.deb.string(), HeaderVerdict::Malformed, c.read->error().message));
        continue;
      }
      c.contents = &c.read->value();
    }
    auto stanza = matching_stanza(c, c.contents->sha256);
    if (!stanza) {
      builder.add_rejected(rejected(name, c.deb.string(), HeaderVerdict::Corrupted,
                                    "the .deb's SHA-256 is " + to_hex(c.contents->sha256) +
                                        ", not the " + c.stanzas.front().sha256 +
                                        " its verified Packages stanza gives"));
      continue;
    }
    add_package(builder, c, *stanza, *c.contents, *diversions, aliases);
    used.push_back(c.contents->sha256);
    if (cache && c.read) cache->put(std::move(c.read->value()));
  }
  if (cache && (stats.debs_read > 0 || cache->size() != used.size())) {
    cache->keep_only(used);
    if (auto saved = cache->save(); !saved)
      stats.cache_problem = "not written: " + saved.error().message;
  }
  return stats;
}

}  // namespace digestfs
