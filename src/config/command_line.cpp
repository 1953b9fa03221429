#include "src/config/command_line.hpp"

namespace digestfs {

namespace {

bool taken(const OptionSpec& spec, bool mount) {
  return mount || spec.scope == OptionScope::Everywhere;
}

}  // namespace

Result<CommandLine> parse_command_line(int argc, char** argv,
                                       const std::set<std::string>& tool_flags, bool mount) {
  CommandLine cl;
  GivenOptions given;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (options_done || !arg.starts_with("--")) {
      cl.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (tool_flags.count(name)) {
      if (value) return Error{EINVAL, "--" + name + " takes no value"};
      cl.flags.insert(name);
      continue;
    }
    const OptionSpec* spec = find_option(name);
    if (!spec) return Error{EINVAL, "unknown option --" + name};
    if (!taken(*spec, mount)) {
      return Error{EINVAL, "--" + name + " is an option of the mount (digestfs, digestfs-run), "
                           "not of this command"};
    }
    if (!spec->value_name.empty() && !value) {
      if (i + 1 >= argc)
        return Error{EINVAL,
                     "--" + name + " needs a value (" + std::string(spec->value_name) + ")"};
      value = argv[++i];
    }
    given.emplace_back(name, value);
  }
  auto settings = settle(given);
  if (!settings) return settings.error();
  cl.settings = std::move(settings.value());
  return cl;
}

std::string options_help(bool mount) {
  std::string out;
  for (const auto& spec : option_registry()) {
    if (!taken(spec, mount)) continue;
    std::string head = "  --" + std::string(spec.name);
    if (!spec.value_name.empty()) head += " " + std::string(spec.value_name);
    if (head.size() < 26)
      head.resize(26, ' ');
    else
      head += "\n" + std::string(26, ' ');
    out += head + std::string(spec.help) + "\n";
  }
  return out;
}

}  // namespace digestfs
