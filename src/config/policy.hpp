// The explicit policy the mount enforces: how refusals are applied, what happens to files
// no package claims, and how %config files are treated.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "src/base/result.hpp"

namespace digestfs {

enum class Mode { Enforce, Audit, Permissive };   // audit: log and allow; permissive: allow
enum class UnknownPolicy { Deny, Audit, Allow };  // files with no entry in the index
enum class ConfigPolicy { Verify, Audit, Skip };  // %config files (admins edit them)

struct UnknownException {
  std::string glob;  // fnmatch pattern over the index path, '/' matched literally
  UnknownPolicy policy;
};

struct Policy {
  Mode mode = Mode::Enforce;
  UnknownPolicy unknown = UnknownPolicy::Deny;
  ConfigPolicy config = ConfigPolicy::Audit;
  std::vector<UnknownException> unknown_exceptions;  // first match wins

  UnknownPolicy unknown_policy_for(std::string_view path) const;
};

Result<Mode> parse_mode(std::string_view s);
Result<UnknownPolicy> parse_unknown(std::string_view s);
Result<ConfigPolicy> parse_config(std::string_view s);
std::string_view to_string(Mode m);
std::string_view to_string(UnknownPolicy p);
std::string_view to_string(ConfigPolicy p);

}  // namespace digestfs
