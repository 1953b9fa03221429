#include "src/settings.hpp"

#include <charconv>

namespace digestfs {
namespace {

Result<void> need_absolute(std::string_view name, std::string_view value) {
  if (value.empty() || value.front() != '/') {
    return Error{EINVAL,
                 std::string(name) + ": '" + std::string(value) + "' is not an absolute path"};
  }
  return {};
}

Result<unsigned> parse_count(std::string_view name, std::string_view value) {
  unsigned n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || n > 1024) {
    return Error{EINVAL, std::string(name) + ": '" + std::string(value) +
                             "' is not a number from 0 to 1024"};
  }
  return n;
}

// An option that sets one of the policy's enumerations by name.
template <class E>
OptionSpec policy_option(std::string_view name, std::string_view values, std::string_view help,
                         Result<E> (*parse)(std::string_view), E Policy::*field) {
  return {name, values, help,
          [parse, field](Settings& s, std::string_view v) -> Result<void> {
            auto parsed = parse(v);
            if (!parsed) return parsed.error();
            s.policy.*field = *parsed;
            return {};
          },
          [field](const Settings& s) { return std::string(to_string(s.policy.*field)); }};
}

std::vector<OptionSpec> make_registry() {
  std::vector<OptionSpec> r;
  r.push_back({"keys", "DIR",
               "directory of ASCII-armored OpenPGP public keys to trust (default "
               "/etc/digestfs/keys.d); nothing else is trusted",
               [](Settings& s, std::string_view v) -> Result<void> {
                 if (v.empty()) return Error{EINVAL, "keys: needs a directory"};
                 s.keys = v;
                 return {};
               },
               [](const Settings& s) { return s.keys.string(); }});
  r.push_back({"root", "DIR", "root whose rpm database describes the tree (default /)",
               [](Settings& s, std::string_view v) -> Result<void> {
                 if (auto ok = need_absolute("root", v); !ok) return ok;
                 s.sources.root = v;
                 s.database_named = true;
                 return {};
               },
               [](const Settings& s) { return s.sources.root.string(); }});
  r.push_back({"dbpath", "PATH",
               "rpm database directory, relative to the root (default /var/lib/rpm)",
               [](Settings& s, std::string_view v) -> Result<void> {
                 if (auto ok = need_absolute("dbpath", v); !ok) return ok;
                 s.sources.dbpath = v;
                 s.database_named = true;
                 return {};
               },
               [](const Settings& s) { return s.sources.dbpath.string(); }});
  r.push_back({"packages", "DIR",
               "directory of .rpm files (or one .rpm file) whose headers are trusted when "
               "signed; may be repeated. Given alone, the rpm database is not read",
               [](Settings& s, std::string_view v) -> Result<void> {
                 if (v.empty()) return Error{EINVAL, "packages: needs a directory or file"};
                 s.sources.packages.emplace_back(v);
                 return {};
               },
               [](const Settings& s) {
                 std::string out;
                 for (const auto& p : s.sources.packages)
                   out += (out.empty() ? "" : ",") + p.string();
                 return out;
               }});
  r.push_back({"allow-weak-digests", "",
               "also trust packages whose file digests are MD5 or SHA-1 (logged loudly)",
               [](Settings& s, std::string_view) -> Result<void> {
                 s.sources.allow_weak_digests = true;
                 return {};
               },
               [](const Settings& s) { return s.sources.allow_weak_digests ? "yes" : "no"; }});
  r.push_back({"jobs", "N", "threads for loading and scanning (default 0: every core)",
               [](Settings& s, std::string_view v) -> Result<void> {
                 auto n = parse_count("jobs", v);
                 if (!n) return n.error();
                 s.sources.jobs = *n;
                 return {};
               },
               [](const Settings& s) { return std::to_string(s.sources.jobs); }});
  r.push_back(policy_option("mode", "enforce|audit|permissive",
                            "enforce refuses what does not verify; audit logs and allows; "
                            "permissive allows",
                            parse_mode, &Policy::mode));
  r.push_back(policy_option("unknown", "deny|audit|allow",
                            "files no accepted package claims (default deny)", parse_unknown,
                            &Policy::unknown));
  for (auto [name, policy] : {std::pair{"unknown-allow", UnknownPolicy::Allow},
                              std::pair{"unknown-audit", UnknownPolicy::Audit},
                              std::pair{"unknown-deny", UnknownPolicy::Deny}}) {
    r.push_back({name, "GLOB",
                 "exception to unknown= for index paths matching GLOB; may be repeated, the "
                 "first matching one applies",
                 [policy](Settings& s, std::string_view v) -> Result<void> {
                   if (v.empty() || v.front() != '/') {
                     return Error{EINVAL, "unknown exceptions: '" + std::string(v) +
                                              "' is not an absolute path glob"};
                   }
                   s.policy.unknown_exceptions.push_back({std::string(v), policy});
                   return {};
                 },
                 [policy](const Settings& s) {
                   std::string out;
                   for (const auto& e : s.policy.unknown_exceptions) {
                     if (e.policy == policy) out += (out.empty() ? "" : ",") + e.glob;
                   }
                   return out;
                 }});
  }
  r.push_back(policy_option("config", "verify|audit|skip",
                            "%config files (default audit: log changes, allow)", parse_config,
                            &Policy::config));
  r.push_back({"prefix", "PATH",
               "the absolute path the mounted source stands for in the index (default: the "
               "source's own path)",
               [](Settings& s, std::string_view v) -> Result<void> {
                 if (auto ok = need_absolute("prefix", v); !ok) return ok;
                 s.prefix = v;
                 return {};
               },
               [](const Settings& s) { return s.prefix; }});
  r.push_back({"prime", "",
               "verify every indexed file in the background right after mounting (idle I/O "
               "priority), so later opens are answered from memory",
               [](Settings& s, std::string_view) -> Result<void> {
                 s.prime = true;
                 return {};
               },
               [](const Settings& s) { return s.prime ? "yes" : "no"; }});
  r.push_back({"noverify", "", "serve every file without checking it (benchmarks only)",
               [](Settings& s, std::string_view) -> Result<void> {
                 s.verify = false;
                 return {};
               },
               [](const Settings& s) { return s.verify ? "no" : "yes"; }});
  return r;
}

}  // namespace

const std::vector<OptionSpec>& option_registry() {
  static const std::vector<OptionSpec> registry = make_registry();
  return registry;
}

const OptionSpec* find_option(std::string_view name) {
  for (const auto& spec : option_registry()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

Result<void> apply_option(Settings& settings, std::string_view name,
                          std::optional<std::string_view> value) {
  const OptionSpec* spec = find_option(name);
  if (!spec) return Error{EINVAL, "unknown option '" + std::string(name) + "'"};
  if (spec->value_name.empty() && value) {
    return Error{EINVAL, "option '" + std::string(name) + "' takes no value"};
  }
  if (!spec->value_name.empty() && !value) {
    return Error{EINVAL, "option '" + std::string(name) + "' needs a value (" +
                             std::string(spec->value_name) + ")"};
  }
  return spec->set(settings, value.value_or(""));
}

void finish_settings(Settings& settings) {
  settings.sources.read_rpmdb = settings.database_named || settings.sources.packages.empty();
}

}  // namespace digestfs
