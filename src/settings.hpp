// Settings and the one option registry behind every way of setting them: the tools'
// --name=value, the mount's -o name=value, and (later) the configuration file. Each option
// parses its own value and prints itself; an unknown name is an error.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/index_loader.hpp"
#include "src/policy.hpp"
#include "src/result.hpp"

namespace digestfs {

struct Settings {
  std::filesystem::path keys = "/etc/digestfs/keys.d";
  SourceOptions sources;
  // Whether root or dbpath was given: with only packages given, the database is not read.
  bool database_named = false;
  // The mount's policy, and the absolute path the mounted tree stands for in the index
  // (empty: the source directory's own path).
  Policy policy;
  std::string prefix;
  bool verify = true;  // off only for measuring the cost of verification
  bool prime = false;  // verify every indexed file in the background after mounting
};

struct OptionSpec {
  std::string_view name;
  std::string_view value_name;  // empty for a flag
  std::string_view help;
  std::function<Result<void>(Settings&, std::string_view)> set;
  std::function<std::string(const Settings&)> show;
};

const std::vector<OptionSpec>& option_registry();
const OptionSpec* find_option(std::string_view name);

// Applies one option by name; value is nullopt when none was given (a flag).
Result<void> apply_option(Settings& settings, std::string_view name,
                          std::optional<std::string_view> value);

// Settles what depends on several options: call once every option is applied.
void finish_settings(Settings& settings);

}  // namespace digestfs
