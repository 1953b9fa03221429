// digestfs-rescan: an fsck-style offline scan of a tree against the signed digests, in
// rpm -V's output format (dpkg --verify's for a Debian root), for trees that are not mounted
// (images, rescue systems, nightly checks). Same library as the mount; no FUSE.
#include <fcntl.h>
#include <rpm/rpmfiles.h>
#include <sched.h>
#include <sys/stat.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "cache/index_report.hpp"
#include "cache/largest_first.hpp"
#include "src/base/json_writer.hpp"
#include "src/base/unique_fd.hpp"
#include "src/config/command_line.hpp"
#include "src/config/trusted_index.hpp"
#include "tools/offline/file_repair.hpp"
#include "tools/offline/file_verifier.hpp"

namespace digestfs {
namespace {

// fsck's exit codes.
constexpr int kClean = 0;
constexpr int kAllCorrected = 1;
constexpr int kProblemsLeft = 4;
constexpr int kOperationalError = 8;
constexpr int kUsageError = 16;

constexpr const char* kUsageText =
    "usage: digestfs-rescan [--root R] [--dbpath P] [--packages DIR] --keys DIR [--jobs N]\n"
    "                       [--json] [--unknown] [--repair --packages DIR] [PATH...]\n"
    "Checks every indexed file under PATH (default: all) in the tree at R the way rpm -V does,\n"
    "against digests of packages whose header signature a key in DIR made. Output is rpm's:\n"
    "SM5DLUGTP columns ('.' passed, '?' could not check), the attribute marker and the path;\n"
    "'missing   PATH' for absent files. Packages rejected for their signature come first.\n"
    "With --apt-lists (the Debian source: dpkg's status of R), the output is dpkg --verify's:\n"
    "'\?\?5\?\?\?\?\?\?' for a file whose content differs.\n"
    "  --unknown     also list files in the tree that no accepted package claims\n"
    "  --json        one machine-readable report\n"
    "  --repair      restore damaged or missing regular files from the signed packages in\n"
    "                --packages DIR (checked against the same keys), atomically\n"
    "exit status: 0 clean, 1 problems found and all corrected, 4 problems left,\n"
    "8 operational error, 16 usage error\n"
    "options:\n";

bool under(const std::string& path, const std::vector<std::string>& scopes) {
  if (scopes.empty()) return true;
  for (const auto& s : scopes) {
    if (s == "/" || path == s || (path.starts_with(s) && path[s.size()] == '/')) return true;
  }
  return false;
}

// The report's lines: rpm -V's for the rpm sources, dpkg --verify's for the Debian source.
enum class ReportFormat { Rpm, Dpkg };

// dpkg --verify checks content only, and prints "??5??????" for a file whose content differs
// (dpkg(1), --verify-format rpm). A size that differs is a content that does.
std::string dpkg_columns(uint32_t result) {
  return (result & (RPMVERIFY_FILEDIGEST | RPMVERIFY_FILESIZE)) ? "??5??????" : "";
}

// rpm prints a line for a file with differences, and for a replaced file even without;
// both print "missing" with the marker for an absent file.
std::string finding_line(const FileEntry& e, const FileCheck& c, ReportFormat format) {
  const char marker = attribute_marker(e.attrs());
  if (c.result & RPMVERIFY_LSTATFAIL) {
    if (e.attrs() & (RPMFILE_MISSINGOK | RPMFILE_GHOST)) return {};
    std::string line = std::string("missing   ") + marker + " " + e.path();
    if (c.lstat_errno != ENOENT) line += std::string(" (") + std::strerror(c.lstat_errno) + ")";
    return line;
  }
  if (format == ReportFormat::Dpkg) {
    std::string columns = dpkg_columns(c.result);
    return columns.empty() ? columns : columns + " " + marker + " " + e.path();
  }
  const bool replaced = e.state() == RPMFILE_STATE_REPLACED;
  if (c.result == 0 && !replaced) return {};
  return verify_columns(c.result) + "  " + marker + " " + e.path() +
         (replaced ? " (replaced)" : "");
}

// Every open and close takes the lock of the fd table that a process's threads share, and every
// read has to count references to the file it reads: on small files that was the largest cost
// of a second core. So each thread that scans takes its own copy of the table once (what was
// open before, the root and the directories, is in every copy; each file it opens it closes
// itself). Should the kernel refuse, the shared table serves, only slower.
void scan_with_own_fd_table() {
  thread_local const bool own = unshare(CLONE_FILES) == 0;
  (void)own;
}

std::vector<std::string> unknown_files(const DigestIndex& index, const std::filesystem::path& root,
                                       const std::vector<std::string>& scopes) {
  std::vector<std::string> out;
  std::vector<std::string> starts = scopes.empty() ? std::vector<std::string>{"/"} : scopes;
  for (const auto& start : starts) {
    std::error_code ec;
    std::filesystem::recursive_directory_iterator it(root / start.substr(1), ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      const std::string path = "/" + std::filesystem::relative(it->path(), root, ec).string();
      if (!index.contains(path)) out.push_back(path);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// What the command line asked for.
struct Request {
  Settings settings;  // the root's database is the index; --packages is not among its sources
  std::vector<std::string> scopes;
  std::vector<std::filesystem::path> repair_sources;  // --packages, with --repair
  bool json = false, unknown = false;
  ReportFormat format = ReportFormat::Rpm;
};

// The scan's outcome: the records checked, in path order, and each record's check.
struct Scan {
  std::vector<uint32_t> records;
  std::vector<FileCheck> checks;  // by record
};

// Checks every record under the request's scopes, on every core, largest file first.
Scan scan_tree(const DigestIndex& index, int root_fd, const RootAccounts& accounts,
               const Request& request) {
  Scan scan;
  for (uint32_t i = 0; i < index.file_count(); ++i) {
    if (under(index.entry(i).path(), request.scopes)) scan.records.push_back(i);
  }
  // Each directory is resolved once (inside the root); its files are then one component away.
  std::vector<uint32_t> dirs;  // one record of each directory with work in it
  std::vector<char> seen(index.dir_count(), 0);
  for (uint32_t i : scan.records) {
    if (!std::exchange(seen[index.entry(i).dir_id()], 1)) dirs.push_back(i);
  }
  std::vector<UniqueFd> dir_fds(index.dir_count());
  scan.checks.resize(index.file_count());
  std::atomic<size_t> done{0};
  const bool progress = !request.json && isatty(STDERR_FILENO);
  const unsigned jobs = request.settings.sources.jobs;
  tbb::task_arena arena(jobs ? static_cast<int>(jobs) : tbb::task_arena::automatic);
  arena.execute([&] {
    tbb::parallel_for(size_t{0}, dirs.size(), [&](size_t k) {
      const FileEntry e = index.entry(dirs[k]);
      dir_fds[e.dir_id()] = open_dir_in_root(root_fd, e.dirname());
    });
    for_each_largest_first(index, scan.records, [&](uint32_t record) {
      scan_with_own_fd_table();
      const FileEntry e = index.entry(record);
      scan.checks[record] =
          verify_entry(root_fd, dir_fds[e.dir_id()].get(), e, accounts, index.shared(record));
      // Counted only for the progress bar, or both cores would contend for it on every file.
      if (!progress) return;
      size_t n = ++done;
      if (n % 256 == 0 || n == scan.records.size()) {
        std::fprintf(stderr, "\rdigestfs-rescan: %zu/%zu files", n, scan.records.size());
      }
    });
  });
  if (progress) std::fputc('\n', stderr);
  std::sort(scan.records.begin(), scan.records.end());  // report in path order
  return scan;
}

// Restores the damaged regular files the scan found, then checks them again, so that the
// report shows what is still wrong.
Result<RepairOutcome> repair_damage(const TrustedIndex& trusted, Scan& scan, int root_fd,
                                    const RootAccounts& accounts, const Request& request) {
  const DigestIndex& index = *trusted.index;
  std::vector<uint32_t> damaged;
  for (uint32_t i : scan.records) {
    const FileEntry e = index.entry(i);
    if (S_ISREG(e.mode()) && !e.is_ghost() &&
        !finding_line(e, scan.checks[i], ReportFormat::Rpm).empty()) {
      damaged.push_back(i);
    }
  }
  auto repairs =
      repair_files(index, damaged, *trusted.trust, request.repair_sources, root_fd, accounts);
  if (!repairs) return repairs.error();
  for (uint32_t i : repairs->repaired) {
    scan.checks[i] = verify_entry(root_fd, -1, index.entry(i), accounts, index.shared(i));
  }
  return repairs;
}

// The report, as rpm -V's lines or as one JSON document: each section in its order.
class RescanReport {
 public:
  RescanReport(bool json, ReportFormat format) : json_(json), format_(format) {
    if (json_) j_.begin_object();
  }
  void section(std::string_view name) {
    if (!json_) return;
    if (in_section_) j_.end_array();
    j_.key(name).begin_array();
    in_section_ = true;
  }
  void rejected(const RejectedHeader& r) {
    if (json_) {
      rejected_json(j_, r, false);
    } else {
      std::printf("rejected  %s %s: %s\n", r.nevra.c_str(),
                  std::string(verdict_name(r.verdict)).c_str(), r.reason.c_str());
    }
  }
  void finding(const FileEntry& e, const FileCheck& check, const std::string& line) {
    if (!json_) {
      std::puts(line.c_str());
      return;
    }
    j_.begin_object().key("path").value(e.path()).key("package").value(e.package().nevra);
    if (check.result & RPMVERIFY_LSTATFAIL)
      j_.key("missing").value(true);
    else
      j_.key("columns").value(format_ == ReportFormat::Dpkg ? dpkg_columns(check.result)
                                                            : verify_columns(check.result));
    j_.key("marker").value(std::string(1, attribute_marker(e.attrs()))).end_object();
  }
  // A path after a word ("repaired", "unknown"); in JSON, the path alone.
  void path(const char* word, const std::string& path) {
    if (json_)
      j_.value(path);
    else
      std::printf("%-9s %s\n", word, path.c_str());
  }
  void not_repaired(const std::string& path, const std::string& why) {
    if (json_)
      j_.begin_object().key("path").value(path).key("reason").value(why).end_object();
    else
      std::printf("not repaired  %s: %s\n", path.c_str(), why.c_str());
  }
  void finish(size_t checked, int code) {
    if (!json_) return;
    if (in_section_) j_.end_array();
    j_.key("checked").value(static_cast<uint64_t>(checked)).key("exit").value(code).end_object();
    std::puts(j_.str().c_str());
  }

 private:
  bool json_;
  ReportFormat format_;
  bool in_section_ = false;
  JsonWriter j_;
};

// Writes the report; returns the exit status: problems counts what is still wrong.
int report(const DigestIndex& index, const std::filesystem::path& root, const Scan& scan,
           const std::optional<RepairOutcome>& repairs, const Request& request) {
  RescanReport out(request.json, request.format);
  size_t problems = index.rejected().size();
  out.section("rejected");
  for (const auto& r : index.rejected()) out.rejected(r);
  out.section("files");
  bool found = repairs && !repairs->repaired.empty();
  for (uint32_t i : scan.records) {
    const FileEntry e = index.entry(i);
    const std::string line = finding_line(e, scan.checks[i], request.format);
    if (line.empty()) continue;
    ++problems;
    found = true;
    out.finding(e, scan.checks[i], line);
  }
  if (repairs) {
    out.section("repaired");
    for (uint32_t i : repairs->repaired) out.path("repaired", index.entry(i).path());
    out.section("not_repaired");
    for (const auto& [i, why] : repairs->failed) out.not_repaired(index.entry(i).path(), why);
  }
  if (request.unknown) {
    out.section("unknown");
    for (const auto& path : unknown_files(index, root, request.scopes)) {
      ++problems;
      out.path("unknown", path);
    }
  }
  const int code = problems ? kProblemsLeft : (found ? kAllCorrected : kClean);
  out.finish(scan.records.size(), code);
  return code;
}

// The request, or the exit status of a usage error (or of --help).
std::variant<Request, int> parse_request(int argc, char** argv) {
  auto cl = parse_command_line(argc, argv, {"json", "unknown", "repair", "help"});
  if (!cl) {
    std::fprintf(stderr, "digestfs-rescan: %s\n%s%s", cl.error().message.c_str(), kUsageText,
                 options_help().c_str());
    return kUsageError;
  }
  if (cl->flags.count("help")) {
    std::printf("%s%s", kUsageText, options_help().c_str());
    return kClean;
  }
  Request request;
  for (auto p : cl->positional) {
    if (p.empty() || p.front() != '/') {
      std::fprintf(stderr, "digestfs-rescan: '%s' is not an absolute path inside the root\n",
                   p.c_str());
      return kUsageError;
    }
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    request.scopes.push_back(p);
  }
  request.json = cl->flags.count("json") > 0;
  request.unknown = cl->flags.count("unknown") > 0;
  // Here --packages names where repairs come from; the index is the root's database.
  request.repair_sources = cl->settings.sources.packages;
  if (cl->flags.count("repair") != !request.repair_sources.empty()) {
    std::fprintf(stderr, "digestfs-rescan: --repair and --packages DIR go together\n");
    return kUsageError;
  }
  request.settings = std::move(cl->settings);
  request.settings.sources.packages.clear();
  // The root's own package database is the index: dpkg's (with its report format) where the
  // Debian source is given, else rpm's.
  const auto& sources = request.settings.sources;
  request.format = sources.debian.enabled() ? ReportFormat::Dpkg : ReportFormat::Rpm;
  request.settings.sources.read_rpmdb = !sources.debian.enabled() || request.settings.dbpath_named;
  return request;
}

int run(int argc, char** argv) {
  auto parsed = parse_request(argc, argv);
  if (const int* code = std::get_if<int>(&parsed)) return *code;
  const Request& request = std::get<Request>(parsed);
  const std::filesystem::path root = request.settings.sources.root;
  auto loaded = load_trusted_index(request.settings);
  if (!loaded) {
    std::fprintf(stderr, "digestfs-rescan: %s\n", loaded.error().message.c_str());
    return kOperationalError;
  }
  UniqueFd root_fd(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) {
    std::fprintf(stderr, "digestfs-rescan: root %s: %s\n", root.c_str(), std::strerror(errno));
    return kOperationalError;
  }
  const RootAccounts accounts(root);
  Scan scan = scan_tree(*loaded->index, root_fd.get(), accounts, request);
  std::optional<RepairOutcome> repairs;
  if (!request.repair_sources.empty()) {
    auto repaired = repair_damage(*loaded, scan, root_fd.get(), accounts, request);
    if (!repaired) {
      std::fprintf(stderr, "digestfs-rescan: %s\n", repaired.error().message.c_str());
      return kOperationalError;
    }
    repairs = std::move(repaired.value());
  }
  return report(*loaded->index, root, scan, repairs, request);
}

}  // namespace
}  // namespace digestfs

int main(int argc, char** argv) { return digestfs::run(argc, argv); }
