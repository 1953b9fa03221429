#include "cache/debian/dpkg_status.hpp"

#include <sstream>
#include <system_error>

#include "cache/debian/apt_text.hpp"
#include "src/base/file_text.hpp"

namespace digestfs {

Result<std::vector<InstalledPackage>> read_installed_packages(const std::filesystem::path& status) {
  auto text = read_file_text(status);
  if (!text) return Error{text.error().code, "dpkg status " + text.error().message};
  std::vector<InstalledPackage> out;
  auto parsed = for_each_stanza(*text, status.string(), [&](const pkgTagSection& s) {
    std::istringstream words(s.FindS("Status"));
    std::string want, flag, state;
    words >> want >> flag >> state;
    if (state != "installed" && state != "half-configured" && state != "triggers-awaited" &&
        state != "triggers-pending")
      return;
    out.push_back({s.FindS("Package"), s.FindS("Version"), s.FindS("Architecture")});
  });
  if (!parsed) return parsed.error();
  return out;
}

Result<std::map<std::string, Diversion>> read_diversions(const std::filesystem::path& file) {
  std::map<std::string, Diversion> out;
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return out;
  auto text = read_file_text(file);
  if (!text) return text.error();
  std::istringstream lines(*text);
  std::string from, to, by;
  while (std::getline(lines, from) && std::getline(lines, to) && std::getline(lines, by))
    out[from] = {to, by};
  return out;
}

const std::string& diverted_path(const std::map<std::string, Diversion>& diversions,
                                 const std::string& package, const std::string& path) {
  auto it = diversions.find(path);
  if (it == diversions.end() || it->second.by == package) return path;
  return it->second.to;
}

}  // namespace digestfs
