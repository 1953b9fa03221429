// Reload after a one-package update, against a full load of the same database, in one run.
// Each round: erase PACKAGE from the database (headers only), load (the snapshot a running
// mount would hold), install PACKAGE again, then time a reload from that snapshot and a full
// load from scratch. Prints medians in milliseconds as one JSON line.
// Usage: reload-bench KEYS ROOT PACKAGE.rpm ROUNDS
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cache/index_loader.hpp"

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

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: reload-bench KEYS ROOT PACKAGE.rpm ROUNDS\n");
    return 2;
  }
  const std::string root = argv[2], package = argv[3];
  const std::string name =
      package.substr(package.rfind('/') + 1, package.find("-1-1.") - package.rfind('/') - 1);
  auto trust = digestfs::TrustStore::load(argv[1]);
  if (!trust) return 1;
  digestfs::SourceOptions options;
  options.root = root;
  std::vector<double> reload_ms, full_ms;
  size_t files = 0, reused = 0;
  for (int round = 0; round < std::atoi(argv[4]); ++round) {
    if (rpm(root, "-e " + name) != 0) return 1;
    auto before = digestfs::load_digest_index(*trust, options, 1);
    if (!before || rpm(root, "-i " + package) != 0) return 1;
    auto t0 = std::chrono::steady_clock::now();
    auto reloaded = digestfs::load_digest_index(*trust, options, 2, before->get());
    auto t1 = std::chrono::steady_clock::now();
    auto full = digestfs::load_digest_index(*trust, options, 2);
    auto t2 = std::chrono::steady_clock::now();
    if (!reloaded || !full) return 1;
    reload_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    full_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    files = (*reloaded)->file_count();
    reused = (*reloaded)->reused_packages();
  }
  std::printf(
      "{\"files\": %zu, \"reused_packages\": %zu, \"reload_ms\": %.1f, \"full_load_ms\": %.1f}\n",
      files, reused, median(reload_ms), median(full_ms));
  return 0;
}
