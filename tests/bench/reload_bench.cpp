// Reload after a one-package update, against a full load of the same database, in one run.
// Each round, as a running mount sees it: erase PACKAGE from the database (headers only) and
// reload, install PACKAGE again, then time a reload from the snapshot before and a full load
// from scratch. Prints medians in milliseconds as one JSON line.
// Usage: reload-bench KEYS ROOT PACKAGE.rpm ROUNDS
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "src/config/trusted_index.hpp"
#include "src/daemon/heap_policy.hpp"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int rpm(const std::string& root, const std::string& args) {
  return std::system(("rpm --root " + root + " --dbpath /var/lib/rpm " + args +
                      " --justdb --nodeps --noscripts >/dev/null 2>&1")
                         .c_str());
}

// The package's name, as rpm reads it from the file.
std::string package_name(const std::string& file) {
  std::unique_ptr<FILE, int (*)(FILE*)> out(
      popen(("rpm -qp --qf '%{NAME}' " + file + " 2>/dev/null").c_str(), "r"), pclose);
  char buf[256] = {};
  if (!out || !std::fgets(buf, sizeof buf, out.get())) return {};
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: reload-bench KEYS ROOT PACKAGE.rpm ROUNDS\n");
    return 2;
  }
  digestfs::keep_large_blocks_off_the_heap();  // as the daemon does
  const std::string root = argv[2], package = argv[3];
  const std::string name = package_name(package);
  if (name.empty()) return 1;
  digestfs::Settings settings;
  settings.keys = argv[1];
  settings.sources.root = root;
  auto serving = digestfs::load_trusted_index(settings, 1);
  if (!serving) return 1;
  std::vector<double> reload_ms, full_ms;
  size_t files = 0, reused = 0;
  for (int round = 0; round < std::atoi(argv[4]); ++round) {
    // As a running mount sees it: every snapshot is reloaded from the one before.
    if (rpm(root, "-e " + name) != 0) return 1;
    serving = digestfs::load_trusted_index(settings, serving->index->generation() + 1, &*serving);
    if (!serving || rpm(root, "-i " + package) != 0) return 1;
    auto t0 = std::chrono::steady_clock::now();
    serving = digestfs::load_trusted_index(settings, serving->index->generation() + 1, &*serving);
    auto t1 = std::chrono::steady_clock::now();
    auto full = digestfs::load_trusted_index(settings, 1);
    auto t2 = std::chrono::steady_clock::now();
    if (!serving || !full) return 1;
    reload_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    full_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    files = serving->index->file_count();
    reused = serving->index->reused_packages();
  }
  std::printf(
      "{\"files\": %zu, \"reused_packages\": %zu, \"reload_ms\": %.1f, \"full_load_ms\": %.1f}\n",
      files, reused, median(reload_ms), median(full_ms));
  return 0;
}
