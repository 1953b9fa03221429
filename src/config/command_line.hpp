// Command-line parsing shared by the tools: --name=value or --name value for every option
// of the registry, plus the tool's own flags; everything else is a positional argument.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "src/config/settings.hpp"

namespace digestfs {

struct CommandLine {
  Settings settings;
  std::set<std::string> flags;  // the tool's own flags that were given, without "--"
  std::vector<std::string> positional;
};

// `mount`: the command mounts (digestfs-run), so it takes the mount's options too; the other
// tools take only the options of every command, and name a mount option as such.
Result<CommandLine> parse_command_line(int argc, char** argv,
                                       const std::set<std::string>& tool_flags,
                                       bool mount = false);

// The registry's options as --help lines: those of every command, and with `mount` the
// mount's own too.
std::string options_help(bool mount = false);

}  // namespace digestfs
