// Settings and the one option registry behind every way of setting them: the tools'
// --name=value, the mount's -o name=value, and the configuration file's `name = value`
// lines. Each option parses its own value and prints itself; an unknown name is an error.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cache/index_loader.hpp"
#include "src/base/result.hpp"
#include "src/config/policy.hpp"

namespace digestfs {

// Where the configuration file is read from when config-file= is not given (if it exists).
inline constexpr const char* kDefaultConfigFile = "/etc/digestfs/digestfs.conf";

// Block checks: whether every block read from a verified file is checked against the tree
// built when it was verified, and how much memory the trees may take.
struct BlockChecks {
  bool on = true;
  size_t memory_bytes = size_t{256} << 20;
};

struct Settings {
  std::filesystem::path keys = "/etc/digestfs/keys.d";
  SourceOptions sources;
  // Whether root or dbpath was given: with only packages given, the database is not read.
  bool database_named = false;
  bool dbpath_named = false;
  // The mount's policy, and the absolute path the mounted tree stands for in the index
  // (empty: the source directory's own path).
  Policy policy;
  std::string prefix;
  bool verify = true;  // off only for measuring the cost of verification
  bool prime = false;  // verify every indexed file in the background after mounting
  // Watch the source's filesystem (fanotify) so that the kernel may cache names and
  // attributes until they change; without it, they are cached for 1 s.
  bool watch_source = true;
  // Nodes kept as file handles rather than an fd each, where the kernel gives them.
  bool file_handles = true;
  // How many verified files stay open for reopening (fs/warm_opens.hpp); none: as many as a
  // share of the open-file limit and of memory allows.
  std::optional<unsigned> keep_open;
  BlockChecks block_checks;
  unsigned read_ahead_kib = 4096;     // 0: the kernel's own
  unsigned reload_wait_ms = 5000;     // how long a refusal waits for a reload under way
  std::filesystem::path config_file;  // the file these settings were read from, if any
  // Measurement: the IMA-format log (and FILE.bin), the TPM to extend, and its PCR.
  std::filesystem::path measure_log;
  std::string tpm;
  unsigned pcr = 11;
};

// Who takes an option on its command line: every command (the package sources and the
// trust store, which the tools share with the mount), or the mount only (digestfs and
// digestfs-run, which hands them to it). A configuration file may hold any of them: the
// tools read the mount's file for its sources and leave the rest alone.
enum class OptionScope { Everywhere, MountOnly };

struct OptionSpec {
  std::string_view name;
  std::string_view value_name;  // empty for a flag (which also takes yes or no)
  std::string_view help;
  std::function<Result<void>(Settings&, std::string_view)> set;
  std::function<std::vector<std::string>(const Settings&)> show;  // one item per value
  OptionScope scope = OptionScope::Everywhere;
};

const std::vector<OptionSpec>& option_registry();
const OptionSpec* find_option(std::string_view name);

// Applies one option by name; value is nullopt when none was given (a flag).
Result<void> apply_option(Settings& settings, std::string_view name,
                          std::optional<std::string_view> value);

using GivenOptions = std::vector<std::pair<std::string, std::optional<std::string>>>;

// The settings from options given on a command line, in order: first the configuration
// file (config-file=FILE, or the default one if it exists), then the options themselves, which
// win over the file.
Result<Settings> settle(const GivenOptions& given);

// Applies configuration-file text (`name = value` or `name` lines, '#' comments); errors
// name `origin` and the line.
Result<void> apply_config_text(Settings& settings, std::string_view text,
                               const std::string& origin);

// The effective configuration, in the configuration file's own syntax.
std::string print_config(const Settings& settings);

}  // namespace digestfs
