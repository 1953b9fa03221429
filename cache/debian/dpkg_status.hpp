// What dpkg says is installed on a root, and where it diverted packaged paths. Both are the
// root's own, unsigned state: they only choose which signed .debs are indexed and at which
// paths their files stand, never what a file's content must be.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "src/base/result.hpp"

namespace digestfs {

struct InstalledPackage {
  std::string name, version, architecture;
};

// Packages whose Status is "install ok installed" (or half-configured, triggers-awaited and
// triggers-pending: their files are unpacked in full), in the file's order.
Result<std::vector<InstalledPackage>> read_installed_packages(const std::filesystem::path& status);

struct Diversion {
  std::string to;
  std::string by;  // the package that diverts, or ":" for a local diversion by the admin
};

// dpkg's diversions file (three lines per diversion: from, to, package); none when the root
// has no such file.
Result<std::map<std::string, Diversion>> read_diversions(const std::filesystem::path& file);

// Where `package`'s file `path` was put: its diversion's target, unless the package is the
// one that diverted it.
const std::string& diverted_path(const std::map<std::string, Diversion>& diversions,
                                 const std::string& package, const std::string& path);

}  // namespace digestfs
