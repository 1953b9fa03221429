// digestfs-rescan: an fsck-style offline scan of a tree against the signed digests, in
// rpm -V's output format, for trees that are not mounted (images, rescue systems, nightly
// checks). Same library as the mount; no FUSE.
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
#include <string>
#include <utility>
#include <vector>

#include "cache/file_repair.hpp"
#include "cache/file_verifier.hpp"
#include "cache/largest_first.hpp"
#include "src/command_line.hpp"
#include "src/json.hpp"
#include "src/trusted_index.hpp"
#include "src/unique_fd.hpp"

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
    "  --unknown     also list files in the tree that no accepted package claims\n"
    "  --json        one machine-readable report\n"
    "  --repair      restore damaged or missing regular files from the signed packages in\n"
    "                --packages DIR (checked against the same keys), atomically\n"
    "exit status: 0 clean, 1 problems found and all corrected, 4 problems left,\n"
    "8 operational error, 16 usage error\n"
    "options:\n";

struct Finding {
  uint32_t record;
  FileCheck check;
};

bool under(const std::string& path, const std::vector<std::string>& scopes) {
  if (scopes.empty()) return true;
  for (const auto& s : scopes) {
    if (s == "/" || path == s || (path.starts_with(s) && path[s.size()] == '/')) return true;
  }
  return false;
}

// rpm prints a line for a file with differences, and for a replaced file even without.
std::string rpm_line(const FileEntry& e, const FileCheck& c) {
  const char marker = attribute_marker(e.attrs());
  if (c.result & RPMVERIFY_LSTATFAIL) {
    if (e.attrs() & (RPMFILE_MISSINGOK | RPMFILE_GHOST)) return {};
    std::string line = std::string("missing   ") + marker + " " + e.path();
    if (c.lstat_errno != ENOENT) line += std::string(" (") + std::strerror(c.lstat_errno) + ")";
    return line;
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

int run(int argc, char** argv) {
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
  for (const auto& p : cl->positional) {
    if (p.empty() || p.front() != '/') {
      std::fprintf(stderr, "digestfs-rescan: '%s' is not an absolute path inside the root\n",
                   p.c_str());
      return kUsageError;
    }
  }
  std::vector<std::string> scopes;
  for (auto p : cl->positional) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    scopes.push_back(p);
  }
  const bool json = cl->flags.count("json") > 0;
  const std::filesystem::path root = cl->settings.sources.root;
  // Here --packages names where repairs come from; the index is the root's database.
  const std::vector<std::filesystem::path> repair_sources = cl->settings.sources.packages;
  const bool repair = cl->flags.count("repair") > 0;
  if (repair != !repair_sources.empty()) {
    std::fprintf(stderr, "digestfs-rescan: --repair and --packages DIR go together\n");
    return kUsageError;
  }
  cl->settings.sources.packages.clear();
  cl->settings.sources.read_rpmdb = true;

  auto loaded = load_trusted_index(cl->settings);
  if (!loaded) {
    std::fprintf(stderr, "digestfs-rescan: %s\n", loaded.error().message.c_str());
    return kOperationalError;
  }
  UniqueFd root_fd(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) {
    std::fprintf(stderr, "digestfs-rescan: root %s: %s\n", root.c_str(), std::strerror(errno));
    return kOperationalError;
  }
  const DigestIndex& index = *loaded->index;
  const RootAccounts accounts(root);

  std::vector<uint32_t> work;
  for (uint32_t i = 0; i < index.file_count(); ++i) {
    if (under(index.entry(i).path(), scopes)) work.push_back(i);
  }
  // Each directory is resolved once (inside the root); its files are then one component away.
  std::vector<uint32_t> dirs;  // one record of each directory with work in it
  std::vector<char> seen(index.dir_count(), 0);
  for (uint32_t i : work) {
    if (!std::exchange(seen[index.entry(i).dir_id()], 1)) dirs.push_back(i);
  }
  std::vector<UniqueFd> dir_fds(index.dir_count());
  std::vector<FileCheck> checks(index.file_count());
  std::atomic<size_t> done{0};
  const bool progress = !json && isatty(STDERR_FILENO);
  tbb::task_arena arena(cl->settings.sources.jobs ? static_cast<int>(cl->settings.sources.jobs)
                                                  : tbb::task_arena::automatic);
  arena.execute([&] {
    tbb::parallel_for(size_t{0}, dirs.size(), [&](size_t k) {
      const FileEntry e = index.entry(dirs[k]);
      dir_fds[e.dir_id()] = open_dir_in_root(root_fd.get(), e.dirname());
    });
    for_each_largest_first(index, work, [&](uint32_t record) {
      scan_with_own_fd_table();
      const FileEntry e = index.entry(record);
      checks[record] =
          verify_entry(root_fd.get(), dir_fds[e.dir_id()].get(), e, accounts, index.shared(record));
      // Counted only for the progress bar, or both cores would contend for it on every file.
      if (!progress) return;
      size_t n = ++done;
      if (n % 256 == 0 || n == work.size()) {
        std::fprintf(stderr, "\rdigestfs-rescan: %zu/%zu files", n, work.size());
      }
    });
  });
  if (progress) std::fputc('\n', stderr);
  std::sort(work.begin(), work.end());  // report in path order

  RepairOutcome repairs;
  size_t found = 0;
  for (uint32_t i : work) found += !rpm_line(index.entry(i), checks[i]).empty();
  if (repair) {
    std::vector<uint32_t> damaged;
    for (uint32_t i : work) {
      const FileEntry e = index.entry(i);
      if (S_ISREG(e.mode()) && !e.is_ghost() && !rpm_line(e, checks[i]).empty())
        damaged.push_back(i);
    }
    auto done_repairs =
        repair_files(index, damaged, *loaded->trust, repair_sources, root_fd.get(), accounts);
    if (!done_repairs) {
      std::fprintf(stderr, "digestfs-rescan: %s\n", done_repairs.error().message.c_str());
      return kOperationalError;
    }
    repairs = std::move(done_repairs.value());
    // What was repaired is checked again: the report shows what is still wrong.
    for (uint32_t i : repairs.repaired) {
      const FileEntry e = index.entry(i);
      checks[i] = verify_entry(root_fd.get(), -1, e, accounts, index.shared(i));
    }
  }

  size_t problems = index.rejected().size();
  JsonWriter j;
  if (json) j.begin_object().key("rejected").begin_array();
  for (const auto& r : index.rejected()) {
    if (json) {
      rejected_json(j, r, false);
    } else {
      std::printf("rejected  %s %s: %s\n", r.nevra.c_str(),
                  std::string(verdict_name(r.verdict)).c_str(), r.reason.c_str());
    }
  }
  if (json) j.end_array().key("files").begin_array();
  for (uint32_t i : work) {
    const FileEntry e = index.entry(i);
    const std::string line = rpm_line(e, checks[i]);
    if (line.empty()) continue;
    ++problems;
    if (json) {
      j.begin_object().key("path").value(e.path()).key("package").value(e.package().nevra);
      if (checks[i].result & RPMVERIFY_LSTATFAIL)
        j.key("missing").value(true);
      else
        j.key("columns").value(verify_columns(checks[i].result));
      j.key("marker").value(std::string(1, attribute_marker(e.attrs()))).end_object();
    } else {
      std::puts(line.c_str());
    }
  }
  if (json) j.end_array();
  if (repair) {
    if (json) j.key("repaired").begin_array();
    for (uint32_t i : repairs.repaired) {
      if (json)
        j.value(index.entry(i).path());
      else
        std::printf("repaired  %s\n", index.entry(i).path().c_str());
    }
    if (json) j.end_array().key("not_repaired").begin_array();
    for (const auto& [i, why] : repairs.failed) {
      if (json)
        j.begin_object()
            .key("path")
            .value(index.entry(i).path())
            .key("reason")
            .value(why)
            .end_object();
      else
        std::printf("not repaired  %s: %s\n", index.entry(i).path().c_str(), why.c_str());
    }
    if (json) j.end_array();
  }
  if (cl->flags.count("unknown")) {
    if (json) j.key("unknown").begin_array();
    for (const auto& path : unknown_files(index, root, scopes)) {
      ++problems;
      if (json)
        j.value(path);
      else
        std::printf("unknown   %s\n", path.c_str());
    }
    if (json) j.end_array();
  }
  // problems counts what is still wrong after any repair.
  const int code = problems ? kProblemsLeft : (found ? kAllCorrected : kClean);
  if (json) {
    j.key("checked").value(static_cast<uint64_t>(work.size())).key("exit").value(code).end_object();
    std::puts(j.str().c_str());
  }
  return code;
}

}  // namespace
}  // namespace digestfs

int main(int argc, char** argv) { return digestfs::run(argc, argv); }
