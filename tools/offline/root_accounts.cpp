#include "tools/offline/root_accounts.hpp"

#include <fstream>
#include <sstream>

namespace digestfs {
namespace {

// name:x:ID:... lines; malformed lines are skipped, as getpwnam(3) would skip them.
template <class Id>
void read_ids(const std::filesystem::path& file, std::unordered_map<std::string, Id>& out) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string name, password, id;
    if (!std::getline(fields, name, ':') || !std::getline(fields, password, ':') ||
        !std::getline(fields, id, ':') || id.empty()) {
      continue;
    }
    try {
      out.emplace(name, static_cast<Id>(std::stoul(id)));
    } catch (const std::exception&) {
    }
  }
}

}  // namespace

RootAccounts::RootAccounts(const std::filesystem::path& root) {
  read_ids(root / "etc/passwd", users_);
  read_ids(root / "etc/group", groups_);
}

uid_t RootAccounts::uid(std::string_view user) const {
  auto it = users_.find(std::string(user));
  return it == users_.end() ? 0 : it->second;
}

gid_t RootAccounts::gid(std::string_view group) const {
  auto it = groups_.find(std::string(group));
  return it == groups_.end() ? 0 : it->second;
}

}  // namespace digestfs
