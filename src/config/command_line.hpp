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

Result<CommandLine> parse_command_line(int argc, char** argv,
                                       const std::set<std::string>& tool_flags);

// The registry's options as --help lines.
std::string options_help();

}  // namespace digestfs
