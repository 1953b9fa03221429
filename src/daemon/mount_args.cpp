#include "src/daemon/mount_args.hpp"

#include <set>
#include <vector>

namespace digestfs {
namespace {

// Generic mount options: handed to the kernel (through libfuse) as they are.
const std::set<std::string> kKernelOptions = {
    "rw",          "ro",   "allow_other", "default_permissions",
    "nosuid",      "suid", "nodev",       "dev",
    "noexec",      "exec", "atime",       "noatime",
    "relatime",    "sync", "async",       "dirsync",
    "auto_unmount"};
// fstab bookkeeping words that mount(8) may leave in the list: nothing to do for them.
const std::set<std::string> kIgnoredOptions = {"defaults", "auto", "noauto", "nofail",
                                               "_netdev",  "user", "nouser", "users"};

// The items of a -o list. As libmount reads fstab options (SELinux's context="a,b"), a
// comma between double quotes belongs to the value, and the quotes are dropped: so
// tpm="swtpm:host=127.0.0.1,port=2321" is one option.
Result<std::vector<std::string>> split_option_list(const std::string& list) {
  std::vector<std::string> items(1);
  bool quoted = false;
  for (const char c : list) {
    if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      items.emplace_back();
    } else {
      items.back() += c;
    }
  }
  if (quoted) return Error{EINVAL, "-o " + list + ": a double quote is not closed"};
  return items;
}

// Our options are collected (the configuration file goes first); the rest go to the kernel.
Result<void> apply_dash_o(MountArgs& args, GivenOptions& given, const std::string& list) {
  auto items = split_option_list(list);
  if (!items) return items.error();
  for (const std::string& item : *items) {
    if (item.empty()) continue;
    std::string name = item;
    std::optional<std::string> value;
    if (auto eq = item.find('='); eq != std::string::npos) {
      name = item.substr(0, eq);
      value = item.substr(eq + 1);
    }
    if (kIgnoredOptions.count(name) || name.starts_with("x-")) continue;
    if (kKernelOptions.count(name) && !value) {
      if (name == "ro") args.read_only = true;
      if (name == "rw") args.read_only = false;
      args.kernel_options.push_back(name);
      continue;
    }
    if (!find_option(name)) return Error{EINVAL, "unknown option '" + name + "'"};
    given.emplace_back(name, value);
  }
  return {};
}

}  // namespace

Result<MountArgs> parse_mount_args(int argc, char** argv) {
  MountArgs args;
  GivenOptions given;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-o") {
      if (i + 1 >= argc) return Error{EINVAL, "-o needs a list of options"};
      if (auto ok = apply_dash_o(args, given, argv[++i]); !ok) return ok.error();
    } else if (a.starts_with("-o") && a.size() > 2) {
      if (auto ok = apply_dash_o(args, given, a.substr(2)); !ok) return ok.error();
    } else if (a == "-f") {
      args.foreground = true;
    } else if (a == "-q") {
      args.quiet = true;
    } else if (a == "-d") {
      args.debug = args.foreground = true;
    } else if (a == "-h" || a == "--help") {
      args.help = true;
    } else if (a == "--print-config") {
      args.print_config = true;
    } else if (a.starts_with("--") && a.size() > 2) {
      std::string name = a.substr(2);
      std::optional<std::string> value;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
      } else if (const OptionSpec* spec = find_option(name); spec && !spec->value_name.empty()) {
        if (i + 1 >= argc) return Error{EINVAL, "--" + name + " needs a value"};
        value = argv[++i];
      }
      if (!find_option(name)) return Error{EINVAL, "unknown option --" + name};
      given.emplace_back(name, value);
    } else if (a.starts_with("-") && a.size() > 1) {
      return Error{EINVAL, "unknown option " + a};
    } else {
      positional.push_back(a);
    }
  }
  auto settings = settle(given);
  if (!settings) return settings.error();
  args.settings = std::move(settings.value());
  if (args.help || args.print_config) return args;
  if (positional.size() != 2) {
    return Error{EINVAL, "expected SOURCE and MOUNTPOINT, got " +
                             std::to_string(positional.size()) + " arguments"};
  }
  args.source = positional[0];
  args.mountpoint = positional[1];
  return args;
}

}  // namespace digestfs
