#include "src/config/policy.hpp"

#include <fnmatch.h>

#include <array>
#include <utility>

namespace digestfs {
namespace {

template <class E, size_t N>
Result<E> parse_enum(std::string_view what, std::string_view s,
                     const std::array<std::pair<std::string_view, E>, N>& names) {
  std::string choices;
  for (const auto& [name, value] : names) {
    if (name == s) return value;
    if (!choices.empty()) choices += '|';
    choices += name;
  }
  return Error{EINVAL, std::string(what) + ": '" + std::string(s) + "' is not one of " + choices};
}

constexpr std::array<std::pair<std::string_view, Mode>, 3> kModes{
    {{"enforce", Mode::Enforce}, {"audit", Mode::Audit}, {"permissive", Mode::Permissive}}};
constexpr std::array<std::pair<std::string_view, UnknownPolicy>, 3> kUnknown{
    {{"deny", UnknownPolicy::Deny},
     {"audit", UnknownPolicy::Audit},
     {"allow", UnknownPolicy::Allow}}};
constexpr std::array<std::pair<std::string_view, ConfigPolicy>, 3> kConfig{
    {{"verify", ConfigPolicy::Verify},
     {"audit", ConfigPolicy::Audit},
     {"skip", ConfigPolicy::Skip}}};

template <class E, size_t N>
std::string_view name_of(E value, const std::array<std::pair<std::string_view, E>, N>& names) {
  for (const auto& [name, v] : names) {
    if (v == value) return name;
  }
  return "?";
}

}  // namespace

UnknownPolicy Policy::unknown_policy_for(std::string_view path) const {
  const std::string p(path);
  for (const auto& e : unknown_exceptions) {
    if (fnmatch(e.glob.c_str(), p.c_str(), FNM_PATHNAME) == 0) return e.policy;
  }
  return unknown;
}

Result<Mode> parse_mode(std::string_view s) { return parse_enum("mode", s, kModes); }
Result<UnknownPolicy> parse_unknown(std::string_view s) {
  return parse_enum("unknown", s, kUnknown);
}
Result<ConfigPolicy> parse_config(std::string_view s) { return parse_enum("config", s, kConfig); }
std::string_view to_string(Mode m) { return name_of(m, kModes); }
std::string_view to_string(UnknownPolicy p) { return name_of(p, kUnknown); }
std::string_view to_string(ConfigPolicy p) { return name_of(p, kConfig); }

}  // namespace digestfs
