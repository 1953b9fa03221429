#include "src/base/mount_table.hpp"

#include <limits.h>
#include <stdlib.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace digestfs {
namespace {

// /proc/self/mountinfo writes space, tab, newline and backslash as \ooo.
std::string unescape(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && std::isdigit(field[i + 1])) {
      out += static_cast<char>(std::stoi(field.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

}  // namespace

std::string mount_path(const std::string& path) {
  std::filesystem::path p = std::filesystem::absolute(path).lexically_normal();
  std::string s = p.string();
  while (s.size() > 1 && s.ends_with('/')) s.pop_back();
  if (s == "/") return s;
  const std::filesystem::path parent = std::filesystem::path(s).parent_path();
  char real[PATH_MAX];
  if (!realpath(parent.c_str(), real)) return s;
  const std::string dir = real;
  return (dir == "/" ? "" : dir) + "/" + std::filesystem::path(s).filename().string();
}

std::vector<MountEntry> mounts() {
  std::ifstream info("/proc/self/mountinfo");
  std::vector<MountEntry> out;
  for (std::string line; std::getline(info, line);) {
    std::istringstream fields(line);
    MountEntry e;
    std::string point, root;
    fields >> e.id >> e.parent >> e.device >> root >> point;
    e.root = unescape(root);
    e.point = unescape(point);
    for (std::string f; fields >> f;) {
      if (f == "-") {
        std::string source;
        fields >> e.type >> source;
        e.source = unescape(source);
        break;
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<MountEntry> topmost_mount(const std::string& path) {
  std::optional<MountEntry> found;
  for (auto& e : mounts()) {
    if (e.point == path) found = std::move(e);
  }
  return found;
}

std::string mounted_type(const std::string& path) {
  const auto top = topmost_mount(path);
  return top ? top->type : std::string();
}

}  // namespace digestfs
