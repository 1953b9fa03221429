// User and group names of a root, from its own /etc/passwd and /etc/group: what rpm -V sees
// inside its chroot. "root" is 0 even without those files, and an unknown name is 0 as well
// (rpm's rule when it runs as root).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>

namespace digestfs {

class RootAccounts {
 public:
  explicit RootAccounts(const std::filesystem::path& root);
  uid_t uid(std::string_view user) const;
  gid_t gid(std::string_view group) const;

 private:
  std::unordered_map<std::string, uid_t> users_;
  std::unordered_map<std::string, gid_t> groups_;
};

}  // namespace digestfs
