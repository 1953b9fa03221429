#include "tools/offline/file_repair.hpp"

#include <fcntl.h>
#include <rpm/rpmarchive.h>
#include <rpm/rpmlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "cache/file_hasher.hpp"
#include "cache/index_loader.hpp"
#include "cache/rpm_library.hpp"
#include "src/base/unique_fd.hpp"
#include "tools/offline/file_verifier.hpp"

namespace digestfs {
namespace {

// Writes the archive entry's bytes to a temporary file beside the target, checks them
// against the entry's digest, then renames it over the target. Returns why not, or "".
std::string restore_one(rpmfi fi, const FileEntry& e, int root_fd, const RootAccounts& accounts) {
  const std::string path = e.path();
  const std::string name = path.substr(path.rfind('/') + 1);
  UniqueFd dir = open_dir_in_root(root_fd, e.dirname());
  if (!dir) return std::string("parent directory: ") + std::strerror(errno);
  const std::string tmp = "." + name + ".digestfs-repair";
  UniqueFd out(
      openat(dir.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!out) return std::string("temporary file: ") + std::strerror(errno);
  auto discard = [&](const std::string& why) {
    unlinkat(dir.get(), tmp.c_str(), 0);
    return why;
  };
  auto stream = DigestStream::start(e.algo());
  if (!stream) return discard(stream.error().message);
  std::vector<char> buf(1 << 16);
  for (ssize_t n; (n = rpmfiArchiveRead(fi, buf.data(), buf.size())) != 0;) {
    if (n < 0) return discard("payload read error");
    stream->update(buf.data(), static_cast<size_t>(n));
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(out.get(), buf.data() + off, static_cast<size_t>(n - off));
      if (w < 0) return discard(std::string("write: ") + std::strerror(errno));
      off += w;
    }
  }
  const auto digest = stream->finish();
  if (!digest) return discard(digest.error().message);
  if (!(digest->view() == e.digest())) {
    return discard("payload content does not match the signed digest");
  }
  struct timespec times[2] = {{static_cast<time_t>(e.mtime()), 0},
                              {static_cast<time_t>(e.mtime()), 0}};
  if (fchown(out.get(), accounts.uid(e.user()), accounts.gid(e.group())) != 0 ||
      fchmod(out.get(), e.mode() & 07777) != 0 || futimens(out.get(), times) != 0 ||
      fsync(out.get()) != 0) {
    return discard(std::string("setting attributes: ") + std::strerror(errno));
  }
  if (renameat(dir.get(), tmp.c_str(), dir.get(), name.c_str()) != 0) {
    return discard(std::string("rename: ") + std::strerror(errno));
  }
  // In place, but a crash now could lose the rename: said, so that the rescan is run again.
  // (dir is O_PATH, which fsync refuses: the directory itself is opened for it.)
  UniqueFd synced(openat(dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!synced || fsync(synced.get()) != 0) {
    return std::string("restored, but its directory could not be synced: ") + std::strerror(errno);
  }
  return {};
}

}  // namespace

Result<RepairOutcome> repair_files(const DigestIndex& index, const std::vector<uint32_t>& records,
                                   const TrustStore& trust,
                                   const std::vector<std::filesystem::path>& sources, int root_fd,
                                   const RootAccounts& accounts) {
  RepairOutcome outcome;
  // The repair sources are judged like any package: only accepted ones are read.
  SourceOptions options;
  options.read_rpmdb = false;
  options.packages = sources;
  auto verified = load_digest_index(trust, options);
  if (!verified) return verified.error();
  std::map<std::string, std::filesystem::path> package_file;  // NEVRA -> accepted .rpm
  for (const auto& p : (*verified)->packages()) package_file.emplace(p.nevra, p.origin);

  std::map<std::string, std::map<std::string, uint32_t>> wanted;  // .rpm -> path -> record
  for (uint32_t r : records) {
    const FileEntry e = index.entry(r);
    auto it = package_file.find(e.package().nevra);
    if (it == package_file.end()) {
      outcome.failed[r] = "no signed package " + e.package().nevra + " among the repair sources";
    } else {
      wanted[it->second.string()][e.path()] = r;
    }
  }
  rpm::TsPtr ts = rpm::make_ts(trust.keyring(), RPMVSF_MASK_NODIGESTS | RPMVSF_MASK_NOSIGNATURES);
  for (auto& [file, paths] : wanted) {
    rpm::FdPtr fd(Fopen(file.c_str(), "r.ufdio"));
    Header raw = nullptr;
    if (!fd || rpmReadPackageFile(ts.get(), fd.get(), file.c_str(), &raw) != RPMRC_OK) {
      for (auto& [path, r] : paths) outcome.failed[r] = "cannot read " + file;
      continue;
    }
    rpm::HeaderPtr h(raw);
    const char* compressor = headerGetString(h.get(), RPMTAG_PAYLOADCOMPRESSOR);
    const std::string mode = std::string("r.") + (compressor ? compressor : "gzip");
    FD_t payload = Fdopen(fd.get(), mode.c_str());  // the same stream, now decompressing
    rpm::FilesPtr files(rpmfilesNew(nullptr, h.get(), 0, RPMFI_KEEPHEADER));
    rpm::FiPtr fi(
        rpmfiNewArchiveReader(payload, files.get(), RPMFI_ITER_READ_ARCHIVE_CONTENT_FIRST));
    while (fi && rpmfiNext(fi.get()) >= 0) {
      auto hit = paths.find(rpmfiFN(fi.get()));
      if (hit == paths.end() || !rpmfiArchiveHasContent(fi.get())) continue;
      std::string why = restore_one(fi.get(), index.entry(hit->second), root_fd, accounts);
      if (why.empty())
        outcome.repaired.push_back(hit->second);
      else
        outcome.failed[hit->second] = why;
      paths.erase(hit);
    }
    for (auto& [path, r] : paths) outcome.failed[r] = "not found in the payload of " + file;
  }
  return outcome;
}

}  // namespace digestfs
