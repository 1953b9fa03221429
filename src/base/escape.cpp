#include "src/base/escape.hpp"

namespace digestfs {

namespace {

bool is_control(unsigned char b) { return b < 0x20 || b == 0x7f; }

template <class Escape>
std::string escaped(std::string_view s, Escape escape) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (escape(c)) {
      out += '\\';
      out += static_cast<char>('0' + (b >> 6));
      out += static_cast<char>('0' + ((b >> 3) & 7));
      out += static_cast<char>('0' + (b & 7));
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string octal_escaped(std::string_view s, std::string_view also) {
  return escaped(s, [also](char c) {
    return is_control(static_cast<unsigned char>(c)) || c == '\\' ||
           also.find(c) != std::string_view::npos;
  });
}

std::string control_escaped(std::string_view s) {
  return escaped(s, [](char c) { return is_control(static_cast<unsigned char>(c)); });
}

}  // namespace digestfs
