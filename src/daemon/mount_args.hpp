// The mount's command line: `digestfs [options] SOURCE MOUNTPOINT`, and the form mount.fuse3
// uses (`digestfs SOURCE MOUNTPOINT -o opts`). -o carries both our options (the registry) and
// the generic mount options that go to the kernel.
#pragma once

#include <string>
#include <vector>

#include "src/config/settings.hpp"

namespace digestfs {

struct MountArgs {
  Settings settings;
  std::string source;
  std::string mountpoint;
  bool foreground = false;
  bool debug = false;
  bool quiet = false;  // in the foreground: only refusals on stderr, the rest to syslog
  bool read_only = false;
  bool help = false;
  bool print_config = false;                // print the effective configuration and exit
  std::vector<std::string> kernel_options;  // passed to FUSE as -o
};

Result<MountArgs> parse_mount_args(int argc, char** argv);

}  // namespace digestfs
