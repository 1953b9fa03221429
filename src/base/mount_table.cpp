#include "src/base/mount_table.hpp"

#include <cctype>
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

std::string mounted_type(const std::string& path) {
  std::ifstream info("/proc/self/mountinfo");
  std::string type;
  for (std::string line; std::getline(info, line);) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
    if (unescape(point) != path) continue;
    for (std::string f; fields >> f;) {
      if (f == "-") {
        fields >> type;
        break;
      }
    }
  }
  return type;
}

}  // namespace digestfs
